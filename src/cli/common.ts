import { availableParallelism } from 'node:os';
import { Option, type Command } from 'commander';
import { initBackend, type BackendInfo } from '../backend/select.js';
import { parseAttackOptions } from '../attacks/options.js';
import type { PoisonMode } from '../attacks/poison.js';
import { usageError } from '../errors.js';
import { BadSampleLog } from '../sources/bad-samples.js';
import type { DataOptions } from '../sources/dataset.js';
import { formatNames, type FormatName } from '../sources/formats.js';
import { openDefaults } from '../sources/open-options.js';
import type { ImageSizePolicy } from '../stages/decode.js';
import { TerminalProgress, type ProgressSink } from '../report/progress.js';
import { createLog, wantsProgressBars, type Log, type LogFormat } from './log.js';

export interface CommonOptions {
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  logFormat?: LogFormat;
  quiet?: boolean;
  onBadSample: 'skip' | 'fail';
  maxBadSamples: number;
  // data flags (addDataOptions); absent ones take their defaults
  dataFormat?: FormatName | 'auto';
  shardIndex?: number;
  numShards?: number;
  s3Endpoint?: string;
  gsEndpoint?: string;
  allowPipe?: boolean;
  imageSizePolicy?: ImageSizePolicy;
  decodeWorkers?: number | 'auto';
  maxEntryBytes?: number;
  maxPixels?: number;
  ioTimeout?: number;
}

/** Options every compute command takes (all of them read --data, so the data flags come too). */
export function addCommonOptions(cmd: Command): Command {
  addDataOptions(cmd);
  return cmd
    .addOption(new Option('--backend <name>', 'compute backend (default: $PBE_BACKEND or auto)').choices(['auto', 'tensorflow', 'wasm', 'cpu']))
    .addOption(new Option('--log-format <format>', 'log lines: pretty (default on a terminal) or json').choices(['pretty', 'json']))
    .option('--quiet', 'no log lines')
    .addOption(new Option('--on-bad-sample <policy>', 'what a bad sample does').choices(['skip', 'fail']).default('skip'))
    .option('--max-bad-samples <n>', 'fail once more samples than this were skipped', intArg('--max-bad-samples', 0), 1000);
}

export interface Setup {
  log: Log;
  backend: BackendInfo;
  badSamples: BadSampleLog;
  /** Progress events go here: bars on a terminal, nowhere otherwise (the log lines carry progress then). */
  progress: ProgressSink;
  /** The data flags, for shardCorpus. */
  data: DataOptions;
}

export async function setup(opts: CommonOptions, withProgress = false): Promise<Setup> {
  const bars = withProgress && wantsProgressBars({ format: opts.logFormat, quiet: opts.quiet }) ? new TerminalProgress() : undefined;
  const log = createLog({ format: opts.logFormat, quiet: opts.quiet, write: bars?.write });
  const backend = await initBackend(opts.backend ?? (process.env.PBE_BACKEND as CommonOptions['backend']) ?? 'auto', (m) => log(m));
  const badSamples = new BadSampleLog({ policy: opts.onBadSample, maxBadSamples: opts.maxBadSamples, log });
  return { log, backend, badSamples, progress: bars?.sink ?? (() => {}), data: dataOptions(opts, log) };
}

/** Where and how data is read and decoded: every command that takes --data. */
export function addDataOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--data-format <format>', 'format of the input URLs (auto: by extension; a directory without shards is an image folder)').choices(['auto', ...formatNames]).default('auto'))
    .option('--shard-index <i>', 'read only partition i of --num-shards (round robin over the shard list)', intArg('--shard-index'))
    .option('--num-shards <n>', 'number of partitions of the shard list', intArg('--num-shards'))
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// URLs (MinIO, Ceph, ...; default $PBE_S3_ENDPOINT, else AWS)')
    .option('--gs-endpoint <url>', 'Cloud Storage API endpoint for gs:// URLs (default $PBE_GS_ENDPOINT, else Google)')
    .option('--allow-pipe', 'allow pipe:CMD data URLs, which run CMD in a shell')
    .addOption(new Option('--image-size-policy <policy>', 'an image of another size than the model input is rejected (a bad sample) or resized').choices(['reject', 'resize']).default('reject'))
    .option('--decode-workers <n>', 'decode in n worker threads (0: on the main thread; auto: cores - 1, at most 4)', workersArg, 'auto')
    .option('--max-entry-bytes <n>', 'largest file (tar entry, record, image) read, in bytes (default 16 MiB)', intArg('--max-entry-bytes', 1))
    .option('--max-pixels <n>', 'largest image decoded, in pixels, height x width (default 16777216)', intArg('--max-pixels', 1))
    .option('--io-timeout <seconds>', `network reads: a connection silent this long is dropped and retried, and a URL that delivers nothing for twice this long fails (default ${openDefaults.idleTimeoutMs / 1000})`, numberArg('--io-timeout', { positive: true }));
}

export function defaultDecodeWorkers(): number {
  return Math.min(4, Math.max(1, availableParallelism() - 1));
}

/** The data flags as options for shardCorpus / shardSource; absent flags take their defaults. */
export function dataOptions(o: CommonOptions, log?: Log): DataOptions {
  return {
    format: o.dataFormat ?? 'auto',
    shardIndex: o.shardIndex,
    numShards: o.numShards,
    s3Endpoint: o.s3Endpoint,
    gsEndpoint: o.gsEndpoint,
    allowPipe: o.allowPipe ?? false,
    imageSize: o.imageSizePolicy ?? 'reject',
    workers: o.decodeWorkers === undefined || o.decodeWorkers === 'auto' ? defaultDecodeWorkers() : o.decodeWorkers,
    maxEntryBytes: o.maxEntryBytes,
    maxPixels: o.maxPixels,
    idleTimeoutMs: o.ioTimeout === undefined ? undefined : o.ioTimeout * 1000,
    log,
  };
}

function workersArg(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw usageError(`--decode-workers expects a non-negative integer or "auto", got "${value}"`);
  return n;
}

/** An integer flag, at least `min` when given (`--epochs 0` is refused, not run). */
export function intArg(name: string, min?: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n)) throw usageError(`${name} expects an integer, got "${value}"`);
    if (min !== undefined && n < min) throw usageError(`${name} expects an integer >= ${min}, got ${n}`);
    return n;
  };
}

/** A number flag; `positive` refuses 0 and below. */
export function numberArg(name: string, opts: { positive?: boolean } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw usageError(`${name} expects a number, got "${value}"`);
    if (opts.positive && !(n > 0)) throw usageError(`${name} expects a number > 0, got ${n}`);
    return n;
  };
}

/**
 * Runs a command's work and then, also when it failed or stopped, lists its skipped samples in `csv` (when given),
 * so that no skip goes unlisted. A failure to write the list does not hide the command's own error.
 */
export async function listingBadSamples<T>(badSamples: BadSampleLog, csv: string | undefined, work: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (err) {
    if (csv) await badSamples.writeCsv(csv).catch(() => undefined);
    throw err;
  }
  if (csv) await badSamples.writeCsv(csv);
  return result;
}

/** Trigger options shared by poison, eval, purify and demo (each attack's defaults: config/attacks/<name>.json). */
export function addTriggerOptions(cmd: Command): Command {
  return cmd
    .option('--attack-option <key=value>', 'an option of the attack (repeatable; see config/README.md), e.g. position=top-left', collect, [])
    .addOption(new Option('--mode <mode>', 'all2one: every poisoned sample goes to --target; all2all: class y goes to (y + 1) mod K').choices(['all2one', 'all2all']).default('all2one'))
    .option('--patch-size <n>', 'BadNets patch side in pixels (= --attack-option size=N)', intArg('--patch-size'))
    .option('--patch-position <pos>', 'BadNets patch: top-left|top-right|bottom-left|bottom-right|"row,col" (= --attack-option position=POS)')
    .option('--blend-ratio <w>', 'Blend weight of the pattern (= --attack-option ratio=W)', numberArg('--blend-ratio'))
    .option('--pattern <file>', 'Blend pattern image or BadNets patch image (= --attack-option pattern=FILE)')
    .option('--pattern-seed <n>', 'seed of the Blend noise pattern (= --attack-option seed=N)', intArg('--pattern-seed'));
}

export interface TriggerCliOptions {
  attackOption?: string[];
  mode?: PoisonMode;
  patchSize?: number;
  patchPosition?: string;
  blendRatio?: number;
  pattern?: string;
  patternSeed?: number;
}

/** The attack options the trigger flags set; the attack's defaults fill in the rest. */
export function triggerOptions(o: TriggerCliOptions): Record<string, unknown> {
  const flags = { patchSize: o.patchSize, patchPosition: o.patchPosition, blendRatio: o.blendRatio, patternFile: o.pattern, patternSeed: o.patternSeed };
  return { ...flags, ...parseAttackOptions(o.attackOption ?? []) };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
