import { parseString } from 'fast-csv';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EpochRow } from '../../pipeline/engine.js';
import type { ProbePoint } from '../../defenses/probe.js';
import { inputError, usageError } from '../../errors.js';
import type { ReportImages } from '../report-images.js';
import { reportImagesFile } from '../report-images.js';
import { runFiles } from '../run-dir.js';

/** What a run directory holds, as the report reads it. Only run.json is required; the rest shows where present. */
export interface RunData {
  dir: string;
  info: RunInfo;
  metrics: EpochRow[];
  scores?: ScoreColumns;
  badSamples?: { count: number; columns: string[]; first: Record<string, string>[] };
  manifest?: { path: string; poisoned: Map<string, boolean> };
  images?: ReportImages;
}

/** run.json as purify writes it (src/cli/purify.ts); every field optional, for runs stopped early. */
export interface RunInfo {
  command?: string;
  status?: string;
  args?: Record<string, unknown>;
  preset?: string | null;
  config?: Record<string, unknown>;
  backend?: { name?: string; [k: string]: unknown };
  versions?: Record<string, string>;
  startedAt?: string;
  eps?: number;
  epsReason?: string;
  lr?: number;
  probe?: (ProbePoint & { flippedTo?: number[] })[];
  pipeline?: string;
  samples?: number;
  trusted?: number;
  badSamples?: number;
  before?: { acc?: number; asr?: number } | null;
  after?: { acc?: number; asr?: number } | null;
  seconds?: number;
  [k: string]: unknown;
}

/** scores.csv as columns. */
export interface ScoreColumns {
  keys: string[];
  suspicion: Float64Array;
  trusted: Uint8Array;
  /** The run's own poisoned flag (scores.csv `flagged`; runs that predate it: not in the final trusted set). */
  flagged: Uint8Array;
  pseudoLabel: Int32Array;
}

export const poisonManifestFile = 'poison-manifest.csv';

export async function readRunData(dir: string, opts: { manifest?: string } = {}): Promise<RunData> {
  const runJson = join(dir, runFiles.runJson);
  if (!existsSync(runJson)) throw usageError(`report: ${dir} is not a run directory (no ${runFiles.runJson})`);
  const info = await readJson<RunInfo>(runJson);
  const metricsPath = join(dir, runFiles.metrics);
  const metrics = existsSync(metricsPath) ? (await readCsv(metricsPath)).map(toEpochRow) : [];
  const scoresPath = join(dir, runFiles.scores);
  const scores = existsSync(scoresPath) ? toScoreColumns(await readCsv(scoresPath)) : undefined;
  const badPath = join(dir, 'bad-samples.csv');
  const badRows = existsSync(badPath) ? await readCsv(badPath) : undefined;
  const manifestPath = opts.manifest ?? findManifest(info);
  const imagesPath = join(dir, reportImagesFile);
  return {
    dir,
    info,
    metrics,
    scores,
    badSamples: badRows && { count: badRows.length, columns: badRows.length ? Object.keys(badRows[0]) : [], first: badRows.slice(0, 20) },
    manifest: manifestPath ? { path: manifestPath, poisoned: await readManifest(manifestPath) } : undefined,
    images: existsSync(imagesPath) ? await readJson<ReportImages>(imagesPath) : undefined,
  };
}

async function readJson<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    throw inputError({ url: path }, `cannot read JSON (${(err as Error).message})`, err);
  }
}

/** A poison-manifest.csv beside local data the run read (`pbe poison` writes one beside its shards). */
export function findManifest(info: RunInfo): string | undefined {
  const specs = Array.isArray(info.args?.data) ? (info.args!.data as string[]) : [];
  for (const spec of specs) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) continue; // a URL (s3:, http:, pipe: ...)
    for (const candidate of [join(spec, poisonManifestFile), join(dirname(spec), poisonManifestFile)]) {
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

async function readManifest(path: string): Promise<Map<string, boolean>> {
  const rows = await readCsv(path);
  if (rows.length && !('key' in rows[0] && 'poisoned' in rows[0])) throw inputError({ url: path }, 'not a poison manifest (expected columns key,poisoned)');
  return new Map(rows.map((r) => [r.key, r.poisoned === '1' || r.poisoned === 'true']));
}

/**
 * A CSV file with a header row, as objects. A file without any quote character has no quoting or escaping to
 * undo, so it is split on line breaks and commas directly (scores.csv of a 60,000-sample run: several times
 * faster than the general parser); any other file goes through fast-csv.
 */
export async function readCsv(path: string): Promise<Record<string, string>[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw inputError({ url: path }, `cannot read CSV (${(err as Error).message})`, err);
  }
  if (!text.includes('"')) {
    const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
    const columns = (lines.shift() ?? '').split(',');
    return lines.map((line) => {
      const cells = line.split(',');
      const row: Record<string, string> = {};
      for (let c = 0; c < columns.length; c++) row[columns[c]] = cells[c] ?? '';
      return row;
    });
  }
  return new Promise((resolve, reject) => {
    const rows: Record<string, string>[] = [];
    parseString(text, { headers: true })
      .on('data', (r: Record<string, string>) => rows.push(r))
      .on('error', (err) => reject(inputError({ url: path }, `cannot read CSV (${err.message})`, err)))
      .on('end', () => resolve(rows));
  });
}

const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v));

function toEpochRow(r: Record<string, string>): EpochRow {
  return {
    round: Number(r.round),
    epoch: Number(r.epoch),
    adversarialShare: Number(r.adversarialShare),
    adversarialBatches: Number(r.adversarialBatches),
    trusted: Number(r.trusted),
    samples: Number(r.samples),
    loss: Number(r.loss),
    flipRate: num(r.flipRate),
    concentration: num(r.concentration),
    concentrationClass: num(r.concentrationClass),
    seconds: Number(r.seconds),
    acc: num(r.acc) ?? undefined,
    asr: num(r.asr) ?? undefined,
  };
}

function toScoreColumns(rows: Record<string, string>[]): ScoreColumns {
  const n = rows.length;
  const out: ScoreColumns = { keys: new Array(n), suspicion: new Float64Array(n), trusted: new Uint8Array(n), flagged: new Uint8Array(n), pseudoLabel: new Int32Array(n) };
  rows.forEach((r, i) => {
    out.keys[i] = r.key;
    out.suspicion[i] = Number(r.suspicion);
    out.trusted[i] = r.trusted === '1' ? 1 : 0;
    out.flagged[i] = r.flagged === undefined ? 1 - out.trusted[i] : r.flagged === '1' ? 1 : 0;
    out.pseudoLabel[i] = Number(r.pseudo_label);
  });
  return out;
}
