import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PoisonMode } from '../attacks/poison.js';
import type { CommonOptions } from '../cli/common.js';
import { loadEvalSet } from '../eval/evaluate.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { shardCorpus } from '../pipeline/corpus.js';
import { StoppedError } from '../pipeline/stop-signal.js';
import { BadSampleLog } from '../sources/bad-samples.js';
import { cellConfigHash, runCell, storedCell, type CellResult } from './cell.js';
import type { BenchContext } from './context.js';
import { prepareBenchData, type BenchDataOptions } from './data.js';
import { cleanModel, infectedModel, type BenchModel } from './models.js';
import { benchCells, outRelative, settingsHash, type Cell } from './plan.js';
import { readCached, writeBenchTables } from './tables.js';

/**
 * `pbe bench`: attacks × defenses × seeds on one dataset. Per seed: the clean reference model, then per attack
 * the infected model (poison → train → score; cached), then each defense on it (a purify run → score; cached
 * per cell). Every result is a file under `out` as soon as it exists, and the tables are rebuilt after each, so a
 * bench stopped at any point and started again redoes only the cell it was in (resuming that cell's run from its
 * checkpoint).
 */
export interface BenchOptions extends BenchDataOptions {
  attacks: string[];
  defenses: string[];
  seeds: number[];
  target: number;
  mode: PoisonMode;
  attackOptions: string[];
  training: BenchContext['training'];
  epochEvalSamples: number;
  common: CommonOptions;
  /** The command line, shown with the tables. */
  command: string;
}

export interface BenchResult {
  cells: CellResult[];
  failed: { what: string; error: string }[];
  tables: string;
}

/** Which infected model each attack and seed currently has (a later bench with other attack options replaces it). */
interface BenchIndex {
  base: string;
  models: Record<string, string>;
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const data = await prepareBenchData(o);
  const badSamples = new BadSampleLog({ policy: 'skip', maxBadSamples: 1000, log: o.log });
  const testSet = await loadEvalSet(shardCorpus(data.test, { ...o.dataOptions, badSamples, requireLabels: true }).samples().output);
  const ctx: BenchContext = { out: o.out, data, training: o.training, target: o.target, mode: o.mode, attackOptions: o.attackOptions, common: o.common, testSet, epochEvalSamples: o.epochEvalSamples, log: o.log };
  const about = [
    `data: ${data.what}; ${data.trainSamples ?? 'all'} training samples${data.cleanSamples ? `, ${data.cleanSamples} more held back as the clean extra set` : ''}, ${testSet.samples.length} test samples`,
    `infected models: ${o.training.model}, ${o.training.epochs} epochs (Adam lr ${o.training.lr}, batch ${o.training.batchSize}); target ${o.target}, ${o.mode}; each attack's default rate and options (config/attacks/) unless --attack-option`,
    `defenses: their defaults (config/defaults.json for pbe, config/defenses/NAME.json), the bench's seed`,
  ];

  const indexPath = join(o.out, 'bench.json');
  const base = settingsHash({ train: outRelative(data.train, o.out), training: o.training, target: o.target, mode: o.mode });
  const stored: BenchIndex | undefined = existsSync(indexPath) ? JSON.parse(await readFile(indexPath, 'utf8')) : undefined;
  const index: BenchIndex = stored?.base === base ? stored : { base, models: {} };
  const remember = async (m: BenchModel) => {
    index.models[`${m.name}/${m.seed}`] = m.hash;
    await writeFileAtomic(indexPath, JSON.stringify(index, null, 2) + '\n');
  };
  const configHashes = new Map<string, string>();
  const configHash = async (cell: Cell) => {
    const key = `${cell.defense}/${cell.seed}`;
    if (!configHashes.has(key)) configHashes.set(key, await cellConfigHash(cell));
    return configHashes.get(key)!;
  };
  const tables = async () => {
    const cached = await readCached(o.out);
    const current = new Set(Object.values(index.models));
    const models = cached.models.filter((m) => current.has(m.hash));
    const cells: CellResult[] = [];
    for (const c of cached.cells) if (current.has(c.infectedHash) && c.configHash === (await configHash(c))) cells.push(c);
    await writeBenchTables(o.out, { models, cells, about, command: o.command });
  };

  const cells = benchCells(o.attacks, o.defenses, o.seeds);
  const done: CellResult[] = [];
  const failed: BenchResult['failed'] = [];
  const computedSeconds: number[] = [];
  let position = 0;
  const started = Date.now();
  try {
    for (const seed of o.seeds) {
      const clean = await cleanModel(ctx, seed);
      await remember(clean);
      for (const attack of o.attacks) {
        const mine = cells.filter((c) => c.seed === seed && c.attack === attack);
        let infected: BenchModel;
        try {
          infected = await infectedModel(ctx, attack, seed, clean);
        } catch (err) {
          if (err instanceof StoppedError) throw err;
          failed.push({ what: `${attack} infected model, seed ${seed}`, error: (err as Error).message });
          o.log(`${attack}: poisoning or training failed, its ${mine.length} cells are skipped: ${(err as Error).message}`);
          position += mine.length;
          continue;
        }
        await remember(infected);
        o.log(`${attack}, seed ${seed}: infected model ACC ${pct(infected.acc)}, ASR ${pct(infected.asr)}`);
        await tables();
        for (const cell of mine) {
          position++;
          const what = `cell ${position}/${cells.length}: ${cell.attack} × ${cell.defense}, seed ${cell.seed}`;
          const hash = await configHash(cell);
          const cached = await storedCell(o.out, cell, infected.hash, hash);
          if (cached) {
            o.log(`${what}: cached (ACC ${pct(cached.acc)}, ASR ${pct(cached.asr)})`);
            done.push(cached);
            continue;
          }
          o.log(`${what}: running`);
          const t0 = Date.now();
          try {
            const result = await runCell(ctx, cell, infected, hash);
            done.push(result);
            computedSeconds.push((Date.now() - t0) / 1000);
            const eta = (computedSeconds.reduce((a, b) => a + b, 0) / computedSeconds.length) * (cells.length - position);
            o.log(`${what}: ACC ${pct(result.acc)}, ASR ${pct(result.asr)} in ${((Date.now() - t0) / 60_000).toFixed(1)} min; about ${(eta / 60).toFixed(0)} min left`);
          } catch (err) {
            if (err instanceof StoppedError) throw err;
            failed.push({ what, error: (err as Error).message });
            o.log(`${what}: failed: ${(err as Error).message}`);
          }
          await tables();
        }
      }
    }
  } catch (err) {
    if (err instanceof StoppedError) o.log(`bench stopped; the same pbe bench command continues it (the cell in progress resumes from its checkpoint)`);
    throw err;
  } finally {
    await tables();
  }
  o.log(`bench done in ${((Date.now() - started) / 60_000).toFixed(1)} min: ${done.length} cells${failed.length ? `, ${failed.length} failed` : ''}; tables in ${join(o.out, 'bench.md')}, bench.csv, bench.html`);
  return { cells: done, failed, tables: await readFile(join(o.out, 'bench.md'), 'utf8') };
}

function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`;
}
