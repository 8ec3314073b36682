import { Option, type Command } from 'commander';
import { initBackend, type BackendInfo } from '../backend/select.js';
import { usageError } from '../errors.js';
import { BadSampleLog } from '../sources/bad-samples.js';
import { TerminalProgress, type ProgressSink } from '../report/progress.js';
import { createLog, wantsProgressBars, type Log, type LogFormat } from './log.js';

export interface CommonOptions {
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  logFormat?: LogFormat;
  quiet?: boolean;
  onBadSample: 'skip' | 'fail';
  maxBadSamples: number;
}

/** Options every compute command takes. */
export function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <name>', 'compute backend (default: $PBE_BACKEND or auto)').choices(['auto', 'tensorflow', 'wasm', 'cpu']))
    .addOption(new Option('--log-format <format>', 'log lines: pretty (default on a terminal) or json').choices(['pretty', 'json']))
    .option('--quiet', 'no log lines')
    .addOption(new Option('--on-bad-sample <policy>', 'what a bad sample does').choices(['skip', 'fail']).default('skip'))
    .option('--max-bad-samples <n>', 'fail once more samples than this were skipped', intArg('--max-bad-samples'), 1000);
}

export interface Setup {
  log: Log;
  backend: BackendInfo;
  badSamples: BadSampleLog;
  /** Progress events go here: bars on a terminal, nowhere otherwise (the log lines carry progress then). */
  progress: ProgressSink;
}

export async function setup(opts: CommonOptions, withProgress = false): Promise<Setup> {
  const bars = withProgress && wantsProgressBars({ format: opts.logFormat, quiet: opts.quiet }) ? new TerminalProgress() : undefined;
  const log = createLog({ format: opts.logFormat, quiet: opts.quiet, write: bars?.write });
  const backend = await initBackend(opts.backend ?? (process.env.PBE_BACKEND as CommonOptions['backend']) ?? 'auto', (m) => log(m));
  const badSamples = new BadSampleLog({ policy: opts.onBadSample, maxBadSamples: opts.maxBadSamples, log });
  return { log, backend, badSamples, progress: bars?.sink ?? (() => {}) };
}

export function intArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw usageError(`${name} expects an integer, got "${value}"`);
    return n;
  };
}

export function numberArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw usageError(`${name} expects a number, got "${value}"`);
    return n;
  };
}

/** Trigger options shared by poison, eval, purify and demo. */
export function addTriggerOptions(cmd: Command): Command {
  return cmd
    .option('--patch-size <n>', 'BadNets patch side in pixels', intArg('--patch-size'), 3)
    .option('--patch-position <pos>', 'BadNets patch: top-left|top-right|bottom-left|bottom-right|"row,col"', 'bottom-right')
    .option('--blend-ratio <w>', 'Blend weight of the pattern', numberArg('--blend-ratio'), 0.1)
    .option('--pattern <file>', 'Blend pattern image (resized to the input); default: seeded noise')
    .option('--pattern-seed <n>', 'seed of the Blend noise pattern', intArg('--pattern-seed'), 0);
}

export interface TriggerCliOptions {
  patchSize: number;
  patchPosition: string;
  blendRatio: number;
  pattern?: string;
  patternSeed: number;
}

export function triggerOptions(o: TriggerCliOptions) {
  return { patchSize: o.patchSize, patchPosition: o.patchPosition, blendRatio: o.blendRatio, patternFile: o.pattern, patternSeed: o.patternSeed };
}
