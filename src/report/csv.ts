import { format as csvFormat } from 'fast-csv';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeAtomicWith } from '../pipeline/atomic-write.js';

/**
 * Writes rows (objects with the given columns) as a CSV file, atomically, streaming: rows are formatted as they
 * are drawn from `rows` (a generator keeps a million-row scores.csv out of memory). Missing values become empty
 * cells.
 */
export async function writeCsvAtomic(path: string, columns: string[], rows: Iterable<Record<string, unknown>>): Promise<void> {
  await writeAtomicWith(path, async (tmp) => {
    const cells = Readable.from((function* () {
      for (const r of rows) yield columns.map((c) => format(r[c]));
    })());
    await pipeline(cells, csvFormat({ headers: columns, alwaysWriteHeaders: true, includeEndRowDelimiter: true }), createWriteStream(tmp));
  });
}

function format(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(6);
  if (typeof v === 'boolean') return v ? '1' : '0';
  return String(v);
}
