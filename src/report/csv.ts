import { writeToString } from 'fast-csv';
import { writeFileAtomic } from '../pipeline/atomic-write.js';

/** Writes rows (objects with the given columns) as a CSV file, atomically. Missing values become empty cells. */
export async function writeCsvAtomic(path: string, columns: string[], rows: Record<string, unknown>[]): Promise<void> {
  const body = await writeToString(
    rows.map((r) => columns.map((c) => format(r[c]))),
    { headers: columns, includeEndRowDelimiter: true },
  );
  await writeFileAtomic(path, rows.length ? body : columns.join(',') + '\n');
}

function format(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(6);
  if (typeof v === 'boolean') return v ? '1' : '0';
  return String(v);
}
