import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { exitCode } from '../../src/cli/exit-code.js';
import { loadPurifyConfig } from '../../src/config/load.js';
import { purifyPbe } from '../../src/defenses/pbe.js';
import { loadModel, saveModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/zoo.js';
import { writeFileAtomic } from '../../src/pipeline/atomic-write.js';
import { lockRunDir } from '../../src/report/run-dir.js';
import { checkpointFile, loadCheckpoint, saveCheckpoint } from '../../src/pipeline/checkpoint.js';
import { validatePbeState } from '../../src/pipeline/run-identity.js';
import { ScoreStore } from '../../src/pipeline/score-store.js';
import type { StopSignal } from '../../src/pipeline/stop-signal.js';
import * as tf from '@tensorflow/tfjs';
import { BadSampleLog } from '../../src/sources/bad-samples.js';
import { shardSource, writeSamples, writeShards } from '../../src/sources/dataset.js';
import { openDefaults, readUrl } from '../../src/sources/open.js';
import type { Sample } from '../../src/sources/types.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { memoryCorpus, syntheticSquares } from '../helpers/memory-corpus.js';
import { makeTar, png, tmpDir } from '../sources/fixtures.js';

/**
 * The fault suite of issue 13: one or more cases per class of fault, each asserting the exit code, the message
 * naming the file or key, the bad-samples.csv rows, and that nothing already written was lost. CLI cases run the
 * CLI's program in process (the SIGKILL case, the compiled CLI in its own process); the rest call the library on tiny fixtures.
 */
/** One `pbe:` line, no stack trace, each part named. */
function expectMessage(stderr: string, ...parts: (string | RegExp)[]) {
  const lines = stderr.split('\n').filter((l) => l.startsWith('pbe: ') || l.startsWith('error:'));
  expect(lines.length, stderr).toBeGreaterThanOrEqual(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain('internal error');
  for (const p of parts) expect(lines.join('\n')).toMatch(typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

const badRows = (csv: string) => readFileSync(csv, 'utf8').trim().split('\n').slice(1);
const gen = (samples: Sample[]) => (async function* () { yield* samples; })();

let dir: string;
let model: string;
let data: string;

beforeAll(async () => {
  dir = tmpDir();
  process.env.PBE_BACKEND = 'wasm';
  await initBackend('wasm');
  const samples = syntheticSquares(40, 3);
  data = join(dir, 'data');
  await writeShards(gen(samples), join(data, 'train'), { samplesPerShard: 20 });
  model = join(dir, 'model');
  await saveModel(buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 }), model);
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('1, 2, 13: a resume continues its own run on its own inputs, or refuses', () => {
  let config: string;
  const args = (out: string) => ['purify', '--model', model, '--data', join(data, 'train-*.tar'), '--out', out, '--config', config, '--eps', '0.05', '--lr', '0.01', '--compute-workers', '0', '--decode-workers', '0', '--quiet'];
  /** A copy of a run killed (SIGKILL) in round 0's epoch 2 of 3: its last checkpoint is the end of epoch 1. */
  const killedRun = (name: string) => {
    const out = join(dir, name);
    cpSync(join(dir, 'killed'), out, { recursive: true });
    return out;
  };

  beforeAll(async () => {
    config = join(dir, 'short.json');
    writeFileSync(config, JSON.stringify({
      batchSize: 16, initialFraction: 0.5, keepRatio: [0.5], probe: { samples: 8, epsGrid: [0.05], minFlipRate: 0.1, lr: 0.01 },
      rounds: [{ epochs: 3, adversarial: { epochs: 1, share: 1, maxBatches: 1 } }, { epochs: 1, adversarial: { epochs: 0, share: 1, maxBatches: null } }],
    }));
    const killed = await spawnCli(args(join(dir, 'killed')), { env: { PBE_FAILPOINT: 'train-step:5' } });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
  }, 300_000);

  it('uses the config stored with the run, not the edited file (no endless epochs)', async () => {
    const out = killedRun('edited-config');
    const original = readFileSync(config, 'utf8');
    writeFileSync(config, original.replace('"epochs":3', '"epochs":1'));
    try {
      const r = await runCli(['purify', '--resume', out, '--quiet']);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      writeFileSync(config, original);
    }
    const metrics = readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(metrics).toHaveLength(1 + 3 + 1); // the run's own schedule: 3 epochs, then 1
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).config.rounds[0].epochs).toBe(3);
  }, 300_000);

  it('refuses a resume on changed data (exit 1, naming the shard); --restart starts again on the data as it is', async () => {
    const out = killedRun('changed-data');
    const shard = join(data, 'train-000001.tar');
    const before = readFileSync(shard);
    await writeShards(gen(syntheticSquares(10, 9, 'cut')), join(dir, 'cut', 'train'), { samplesPerShard: 10 });
    writeFileSync(shard, readFileSync(join(dir, 'cut', 'train-000000.tar')));
    try {
      const refused = await runCli(['purify', '--resume', out, '--quiet']);
      expect(refused.code).toBe(1);
      expectMessage(refused.stderr, 'cannot resume: the inputs changed', shard, '--restart');
      expect(existsSync(checkpointFile(out))).toBe(true); // nothing of the run was destroyed by the refusal
      const restarted = await runCli(['purify', '--resume', out, '--restart', '--quiet']);
      expect(restarted.code, restarted.stderr).toBe(0);
      expect(readFileSync(join(out, 'scores.csv'), 'utf8').trim().split('\n')).toHaveLength(1 + 30);
    } finally {
      writeFileSync(shard, before);
    }
  }, 300_000);

  it('refuses a resume with a changed model (exit 1, naming model.json)', async () => {
    const out = killedRun('changed-model');
    const other = join(dir, 'other-model');
    await saveModel(buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 }), other);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    const weights = readFileSync(join(model, 'weights.bin'));
    writeFileSync(join(model, 'weights.bin'), readFileSync(join(other, 'weights.bin')));
    try {
      const r = await runCli(['purify', '--resume', out, '--quiet']);
      expect(r.code).toBe(1);
      expectMessage(r.stderr, join(model, 'weights.bin'));
    } finally {
      writeFileSync(join(model, 'weights.bin'), weights);
    }
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'))).toEqual(run);
  }, 300_000);

  it('a fresh run refuses an --out holding another run (exit 2) unless --overwrite; a flipped checkpoint byte is refused (exit 1)', async () => {
    const out = killedRun('reused-out');
    const fresh = await runCli(args(out));
    expect(fresh.code).toBe(2);
    expectMessage(fresh.stderr, `--out ${out} holds another run`, '--overwrite');
    const bytes = readFileSync(checkpointFile(out));
    bytes[bytes.length >> 1] ^= 0x40;
    writeFileSync(checkpointFile(out), bytes);
    const flipped = await runCli(['purify', '--resume', out, '--quiet']);
    expect(flipped.code).toBe(1);
    expectMessage(flipped.stderr, checkpointFile(out), 'checksum mismatch');
    const overwritten = await runCli([...args(out), '--overwrite']);
    expect(overwritten.code, overwritten.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).status).toBe('complete');
  }, 300_000);

  it('a run directory in use by another live process is refused (exit 2); a lock of a dead process is taken over', async () => {
    const used = join(dir, 'in-use');
    mkdirSync(used);
    writeFileSync(join(used, 'run.lock'), String(process.ppid));
    const err = await rejection(lockRunDir(used));
    expect(exitCode(err)).toBe(2);
    expect(err.message).toContain(`is in use by another pbe process (pid ${process.ppid}`);
    writeFileSync(join(used, 'run.lock'), '2147483646');
    const release = await lockRunDir(used);
    expect(readFileSync(join(used, 'run.lock'), 'utf8')).toBe(String(process.pid));
    await release();
    expect(existsSync(join(used, 'run.lock'))).toBe(false);
  });

  it('a checkpoint whose state lies past its schedule is refused, not run forever', async () => {
    const out = join(dir, 'bad-state');
    const net = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
    const optimizer = tf.train.momentum(0.01, 0.9);
    const store = new ScoreStore(10);
    store.add('a', 'u', new Float32Array(10), 0, 1);
    const algorithm = { store: store.snapshot(), trusted: ['a'], eps: 0.05, lr: 0.01, epsReason: '', probe: [], trigger: null, inversion: [], inversionReason: '', suspects: [], generators: ['linf-pgd'] };
    const state = { round: 0, epoch: 7, batchesDone: 0, partial: null, partialSeconds: 0, rows: [], algorithm };
    await saveCheckpoint(out, state, net, optimizer);
    const cfg = await loadPurifyConfig({ file: config });
    const err = await rejection(loadCheckpoint(out, { validateState: (s) => validatePbeState(s, cfg) }));
    expect(exitCode(err)).toBe(1);
    expect(err.message).toContain("state.epoch 7 is past round 0's 3 epochs");
    await saveCheckpoint(out, { ...state, epoch: 1, algorithm: { ...algorithm, trusted: ['b'] } }, net, optimizer);
    const stranger = await rejection(loadCheckpoint(out, { validateState: (s) => validatePbeState(s, cfg) }));
    expect(stranger.message).toContain('state names sample "b", which the run\'s score store does not hold');
    await saveCheckpoint(out, { ...state, epoch: 1 }, net, optimizer);
    const ok = await loadCheckpoint<typeof state>(out, { validateState: (s) => validatePbeState(s, cfg) });
    expect(ok.state.algorithm.store.keys).toEqual(['a']);
  });

  it('a stop request ends the reference pass (exit 75) and data that changed under a run is an error, not stale scores', async () => {
    const cfg = await loadPurifyConfig({ file: config, overrides: { pgd: { eps: 0.05 }, optimizer: { lr: 0.01 } } });
    const net = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
    const samples = syntheticSquares(40, 3);
    const stop = { stopRequested: 'SIGTERM' } as StopSignal;
    const stopped = await rejection(purifyPbe(net, memoryCorpus(samples), { config: cfg, log: () => {}, stop, checkpoint: { dir: join(dir, 'stop') } }));
    expect(exitCode(stopped)).toBe(75);
    expect(existsSync(checkpointFile(join(dir, 'stop')))).toBe(false);
    let calls = 0;
    const shrinking = { samples: (keys?: ReadonlySet<string>) => memoryCorpus(calls++ === 0 ? samples : samples.slice(0, 20)).samples(keys) };
    const changed = await rejection(purifyPbe(net, shrinking, { config: cfg, log: () => {} }));
    expect(exitCode(changed)).toBe(1);
    expect(changed.message).toContain("the data changed since the run's reference pass: 20 samples were read, 40 then");
  }, 60_000);
});

describe('3, 4, 11: user mistakes exit 1 or 2 with the file named, never 70; nothing half-written', () => {
  const cases: { name: string; args: () => string[]; code: number; parts: () => (string | RegExp)[] }[] = [
    { name: 'train --classes 1', args: () => ['train', '--data', data, '--out', join(dir, 'm1'), '--classes', '1'], code: 2, parts: () => ['--classes expects an integer >= 2'] },
    { name: 'train --image-size abc', args: () => ['train', '--data', data, '--out', join(dir, 'm1'), '--image-size', 'abc'], code: 2, parts: () => ['--image-size expects HxWxC'] },
    { name: 'train --image-size 0x0x1', args: () => ['train', '--data', data, '--out', join(dir, 'm1'), '--image-size', '0x0x1'], code: 2, parts: () => ['--image-size'] },
    { name: 'train --epochs 0', args: () => ['train', '--data', data, '--out', join(dir, 'm1'), '--epochs', '0'], code: 2, parts: () => ['--epochs expects an integer >= 1'] },
    { name: 'train --batch-size 0', args: () => ['train', '--data', data, '--out', join(dir, 'm1'), '--batch-size', '0'], code: 2, parts: () => ['--batch-size expects an integer >= 1'] },
    { name: 'eval --limit 0', args: () => ['eval', '--model', model, '--data', data, '--limit', '0'], code: 2, parts: () => ['--limit expects an integer >= 1'] },
    { name: 'purify --eval-samples 0', args: () => ['purify', '--model', model, '--data', data, '--out', join(dir, 'p0'), '--eval-samples', '0'], code: 2, parts: () => ['--eval-samples expects an integer >= 1'] },
    { name: 'eval --target 10 on 10 classes', args: () => ['eval', '--model', model, '--data', data, '--attack', 'badnets', '--target', '10'], code: 2, parts: () => ['--target 10 is not a class of the model'] },
    { name: '--backend tpu', args: () => ['eval', '--model', model, '--data', data, '--backend', 'tpu'], code: 2, parts: () => [/tpu/] },
    { name: 'train --out that is a file', args: () => ['train', '--data', data, '--out', join(dir, 'a-file'), '--epochs', '1'], code: 1, parts: () => [`cannot write ${join(dir, 'a-file')}`] },
    { name: 'a model of the wrong input shape: eval', args: () => ['eval', '--model', join(dir, 'model-32'), '--data', data, '--quiet'], code: 1, parts: () => ['no usable labelled samples'] },
    { name: 'model.json is null', args: () => ['eval', '--model', join(dir, 'null-model'), '--data', data], code: 1, parts: () => [join(dir, 'null-model', 'model.json'), 'not a TensorFlow.js LayersModel'] },
    { name: 'weightsManifest [{}]', args: () => ['eval', '--model', join(dir, 'empty-group'), '--data', data], code: 1, parts: () => ['weightsManifest.0.paths'] },
    { name: 'a 1-class model', args: () => ['eval', '--model', join(dir, 'one-class'), '--data', data], code: 1, parts: () => ['2 classes or more'] },
    { name: '10: weight path ../', args: () => ['eval', '--model', join(dir, 'escaping-model'), '--data', data], code: 1, parts: () => ['is outside the model\'s directory'] },
  ];

  beforeAll(async () => {
    writeFileSync(join(dir, 'a-file'), 'x');
    await saveModel(buildModel('cnn-small', { inputShape: [32, 32, 1], numClasses: 10, seed: 1 }), join(dir, 'model-32'));
    mkdirSync(join(dir, 'null-model'));
    writeFileSync(join(dir, 'null-model', 'model.json'), 'null');
    const json = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8'));
    mkdirSync(join(dir, 'empty-group'));
    writeFileSync(join(dir, 'empty-group', 'model.json'), JSON.stringify({ ...json, weightsManifest: [{}] }));
    mkdirSync(join(dir, 'escaping-model'));
    writeFileSync(join(dir, 'escaping-model', 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths: ['../model/weights.bin'] }] }));
    const one = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 1, activation: 'sigmoid' })] });
    await saveModel(one, join(dir, 'one-class'));
  });

  for (const c of cases) {
    it(`${c.name}: exit ${c.code}`, async () => {
      const r = await runCli(c.args());
      expect(r.code, r.stderr).toBe(c.code);
      expectMessage(r.stderr, ...c.parts());
    });
  }

  it('a model of the wrong input shape: purify exits 1, lists every sample in bad-samples.csv and marks run.json failed', async () => {
    const out = join(dir, 'wrong-shape');
    const r = await runCli(['purify', '--model', join(dir, 'model-32'), '--data', join(data, 'train-*.tar'), '--out', out, '--compute-workers', '0', '--decode-workers', '0', '--quiet']);
    expect(r.code, r.stderr).toBe(1);
    expectMessage(r.stderr, 'no usable samples');
    expect(badRows(join(out, 'bad-samples.csv'))).toHaveLength(40);
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).status).toBe('failed');
  });

  it('an atomic write into a read-only directory fails naming the file and leaves no temporary file', async () => {
    const ro = join(dir, 'read-only');
    mkdirSync(ro);
    writeFileSync(join(ro, 'kept.csv'), 'old\n');
    chmodSync(ro, 0o555);
    try {
      const err = await rejection(writeFileAtomic(join(ro, 'kept.csv'), 'new\n'));
      if (process.getuid?.() !== 0) {
        expect(exitCode(err)).toBe(1);
        expect(err.message).toContain(`cannot write ${join(ro, 'kept.csv')}`);
      }
    } catch {
      // root writes anyway: then the write simply succeeds
    } finally {
      chmodSync(ro, 0o755);
    }
    expect(readdirSync(ro).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const asFile = await rejection(writeFileAtomic(join(dir, 'a-file', 'x.csv'), 'x'));
    expect(exitCode(asFile)).toBe(1);
    expect(asFile.message).toContain('a file stands where a directory is needed');
  });

  it('tar, msgpack and csv output on a full disk: exit 1 naming the file, no temporary file left (root: a small tmpfs)', async (ctx) => {
    const { execFileSync } = await import('node:child_process');
    const mnt = join(dir, 'full');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      ctx.skip();
    }
    try {
      for (const format of ['tar', 'msgpack', 'csv'] as const) {
        const out = format === 'csv' ? join(mnt, format, 'x.csv') : join(mnt, format, 'x');
        const err = await rejection(writeSamples(gen(syntheticSquares(200, 1)), out, { format, samplesPerShard: 1000 }));
        expect(exitCode(err), err.message).toBe(1);
        expect(err.message).toMatch(/cannot write .*: the disk is full \(ENOSPC\)/);
        expect(readdirSync(join(mnt, format), { recursive: true }).filter((f) => String(f).endsWith('.tmp'))).toEqual([]);
      }
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('5, 6, 9, 12: every skip listed, in every command, also when the run stops; no stale shards', () => {
  it('a key in two shards (3 copies) is listed twice and used once; convert of such shards reads back', async () => {
    const dup = join(dir, 'dup');
    mkdirSync(dup);
    await makeTar(join(dup, 'a.tar'), [['k.png', png(28, 28, 1)], ['k.cls', '1'], ['j.png', png(28, 28, 1)], ['j.cls', '2']]);
    await makeTar(join(dup, 'b.tar'), [['k.png', png(28, 28, 1, 2)], ['k.cls', '3']]);
    await makeTar(join(dup, 'c.tar'), [['k.png', png(28, 28, 1, 3)], ['k.cls', '4']]);
    const out = join(dir, 'dup-out');
    const r = await runCli(['data', 'convert', '--from', join(dup, '{a,b,c}.tar'), '--to', join(out, 'train'), '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const rows = badRows(join(out, 'bad-samples.csv'));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(`duplicate key: ""k"" was first read from ${join(dup, 'a.tar')} (occurrence 2)`);
    expect(rows[1]).toContain('(occurrence 3)');
    const back: Sample[] = [];
    for await (const s of shardSource(join(out, 'train-*.tar'))()) back.push(s);
    expect(back.map((s) => [s.key, s.label])).toEqual([['k', 1], ['j', 2]]);
  });

  it('convert: keys that cannot be written are listed and skipped, the rest converted', async () => {
    const folder = join(dir, 'folder');
    mkdirSync(join(folder, 'cat'), { recursive: true });
    writeFileSync(join(folder, 'cat', 'cat.001.png'), png(8, 8, 1));
    writeFileSync(join(folder, 'cat', 'plain.png'), png(8, 8, 1, 1));
    const out = join(dir, 'folder-out');
    const r = await runCli(['data', 'convert', '--from', folder, '--to', join(out, 'train'), '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const rows = badRows(join(out, 'bad-samples.csv'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain('cat/cat.001');
    const back: string[] = [];
    for await (const s of shardSource(join(out, 'train-*.tar'))()) back.push(s.key);
    expect(back).toEqual(['cat/plain']);
  });

  it('train, eval and inspect list their skips; --on-bad-sample fail still writes the list before it stops', async () => {
    const mixed = join(dir, 'mixed');
    mkdirSync(mixed);
    const entries: [string, Uint8Array | string][] = [];
    for (let i = 0; i < 6; i++) entries.push([`s${i}.png`, png(28, 28, 1, i)], [`s${i}.cls`, String(i % 3)]);
    entries.push(['big.png', png(28, 28, 1)], ['big.cls', '99'], ['small.png', png(8, 8, 1)], ['small.cls', '1']);
    const shard = await makeTar(join(mixed, 'm.tar'), entries);
    const trainOut = join(dir, 'trained');
    const t = await runCli(['train', '--data', shard, '--out', trainOut, '--epochs', '1', '--batch-size', '4', '--quiet']);
    expect(t.code, t.stderr).toBe(0);
    const trainRows = badRows(join(trainOut, 'bad-samples.csv'));
    expect(trainRows.map((r) => r.split(',')[1]).sort()).toEqual(['big', 'small']);
    expect(trainRows.join('\n')).toContain('.cls label 99 is out of range for 10 classes');
    const evalCsv = join(dir, 'eval-bad.csv');
    const e = await runCli(['eval', '--model', model, '--data', shard, '--bad-samples', evalCsv, '--quiet']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain('(6 samples)');
    expect(badRows(evalCsv)).toHaveLength(2);
    const inspectCsv = join(dir, 'inspect-bad.csv');
    const i = await runCli(['inspect', '--model', model, '--data', shard, '--samples', '8', '--bad-samples', inspectCsv, '--quiet']);
    expect(i.code, i.stderr).toBe(0);
    expect(badRows(inspectCsv)).toHaveLength(1); // labels are not needed here: only the 8x8 image is bad
    const failCsv = join(dir, 'fail-bad.csv');
    const f = await runCli(['eval', '--model', model, '--data', shard, '--on-bad-sample', 'fail', '--bad-samples', failCsv, '--quiet']);
    expect(f.code).toBe(1);
    expectMessage(f.stderr, shard, 'big');
    expect(badRows(failCsv)).toHaveLength(1);
  });

  it('7, 12: poison checks its target, refuses an --out with an earlier run\'s shards, and --overwrite leaves none stale', async () => {
    const out = join(dir, 'poisoned');
    const poison = (extra: string[]) => runCli(['poison', '--data', join(data, 'train-*.tar'), '--out', out, '--attack', 'badnets', '--shard-size', '10', '--quiet', ...extra]);
    expect((await poison([])).code).toBe(0);
    expect(readdirSync(out).filter((f) => f.endsWith('.tar'))).toHaveLength(4);
    const again = await poison(['--rate', '0.2']);
    expect(again.code).toBe(2);
    expectMessage(again.stderr, 'already holds 4 shards', '--overwrite');
    const high = await poison(['--overwrite', '--target', '10']);
    expect(high.code).toBe(2);
    expectMessage(high.stderr, '--target 10 is not one of the --classes 10 (0..9)');
    const negative = await poison(['--overwrite', '--target', '-1']);
    expect(negative.code).toBe(2);
    expectMessage(negative.stderr, '--target expects an integer >= 0');
    expect(readdirSync(out).filter((f) => f.endsWith('.tar'))).toHaveLength(4); // refusals destroyed nothing
    const fewer = await runCli(['poison', '--data', join(data, 'train-000000.tar'), '--out', out, '--attack', 'badnets', '--shard-size', '10', '--overwrite', '--quiet']);
    expect(fewer.code, fewer.stderr).toBe(0);
    expect(readdirSync(out).filter((f) => f.endsWith('.tar')).sort()).toEqual(['train-000000.tar', 'train-000001.tar']);
    expect(readFileSync(join(out, 'poison-manifest.csv'), 'utf8').trim().split('\n')).toHaveLength(1 + 20);
  });
});

describe('8: msgpack records are validated where they are read, the same with and without workers', () => {
  const packr = new Packr({ useRecords: false });
  const record = (key: string, shape: unknown, bytes: number) => packr.pack({ key, shape, dtype: 'uint8', data: new Uint8Array(bytes).fill(9), label: 1 });
  let shard: string;
  beforeAll(() => {
    shard = join(dir, 'records.msgpack');
    writeFileSync(shard, Buffer.concat([
      record('ok-1', [28, 28, 1], 784),
      record('half', [28.5, 28, 1], 784),
      record('string', ['28', 28, 1], 784),
      record('wrap', [2 ** 32 + 28, 28, 1], 784),
      record('huge', [6000, 6000, 1], 16),
      record('long', [28, 28, 1], 5000),
      packr.pack(null),
      record('ok-2', [28, 28, 1], 784),
    ]));
  });

  for (const workers of [0, 2]) {
    it(`${workers} decode workers: each bad record is one row, the records after it are read`, async () => {
      const log = new BadSampleLog({ policy: 'skip' });
      const got: string[] = [];
      for await (const s of shardSource(shard, { workers, maxPixels: 1000, maxEntryBytes: 4000, expected: { height: 28, width: 28, channels: 1 }, onBadSample: log.handler })()) got.push(s.key);
      expect(got).toEqual(['ok-1', 'ok-2']);
      expect(log.rows().map((r) => r.key)).toEqual(['half', 'string', 'wrap', 'huge', 'long', 'record-7']);
      expect(log.rows()[3].reason).toContain('over the limit of 1000 (maxPixels)');
      expect(log.rows()[5].reason).toContain('record #7 is nil');
    });
  }
});

describe('10, 14: manifests stay in their place; a stalled source fails in seconds', () => {
  let server: Server;
  let base: string;
  let stalls = 0;
  beforeAll(async () => {
    writeFileSync(join(dir, 'secret.png'), png(28, 28, 1));
    server = createServer((req, res) => {
      if (req.url === '/m.csv') res.end(`path,label\n${join(dir, 'secret.png')},1\nfile://${join(dir, 'secret.png')},1\npipe:cat ${join(dir, 'secret.png')},1\n../up.png,1\nhttp://127.0.0.1:1/other.png,1\nok.png,2\n`);
      else if (req.url === '/ok.png') res.end(Buffer.from(png(28, 28, 1)));
      else if (req.url === '/stall') {
        stalls++;
        res.writeHead(200, { 'content-length': '1000' });
        res.write('x'); // then nothing
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server.close());

  it('a remote manifest names only its own origin: local paths, file:, pipe:, ".." and other hosts are listed, not read', async () => {
    const log = new BadSampleLog({ policy: 'skip' });
    const got: string[] = [];
    for await (const s of shardSource(`${base}/m.csv`, { allowPipe: true, onBadSample: log.handler })()) got.push(s.url);
    expect(got).toEqual([`${base}/ok.png`]);
    const reasons = log.rows().map((r) => r.reason);
    expect(reasons).toHaveLength(5);
    expect(reasons[0]).toContain('is absolute');
    expect(reasons[1]).toContain('is absolute');
    expect(reasons[2]).toContain('never does');
    expect(reasons[3]).toContain('climbs out');
    expect(reasons[4]).toContain("is not of the manifest's origin");
  });

  it('a local manifest cannot reach outside its directory', async () => {
    const sub = join(dir, 'manifest-dir');
    mkdirSync(sub);
    writeFileSync(join(sub, 'm.csv'), `path,label\n../secret.png,1\n${join(dir, 'secret.png')},1\n`);
    const log = new BadSampleLog({ policy: 'skip' });
    let read = 0;
    for await (const s of shardSource(join(sub, 'm.csv'), { onBadSample: log.handler })()) read += s.key.length;
    expect(read).toBe(0);
    expect(log.rows().map((r) => r.reason)).toEqual([
      'row 2: path "../secret.png" is outside the manifest\'s directory',
      `row 3: path ${JSON.stringify(join(dir, 'secret.png'))} is absolute; a manifest's paths are relative to it`,
    ]);
  });

  it('a stalled HTTP body fails after twice the I/O timeout, naming the URL; the default fails within a minute', async () => {
    const started = Date.now();
    const err = await rejection(readUrl(`${base}/stall`, { idleTimeoutMs: 300, retryDelayMs: 10 }));
    expect(exitCode(err)).toBe(1);
    expect(err.message).toContain(`${base}/stall`);
    expect(err.message).toMatch(/no data for \d+ s/);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stalls).toBeGreaterThanOrEqual(2); // retried before giving up
    expect(2 * openDefaults.idleTimeoutMs).toBeLessThan(60_000);
  });

  it('gs:// against a refused endpoint fails in seconds (the client\'s own retries are off), naming the URL', async () => {
    const started = Date.now();
    const err = await rejection(readUrl('gs://bucket/x.tar', { gsEndpoint: 'http://127.0.0.1:1', retries: 2, retryDelayMs: 10 }));
    expect(exitCode(err)).toBe(1);
    expect(err.message).toContain('gs://bucket/x.tar');
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('loadModel keeps weight files inside the model directory', () => {
  it('refuses an absolute weight path', async () => {
    const json = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8'));
    const abs = join(dir, 'abs-model');
    mkdirSync(abs);
    writeFileSync(join(abs, 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths: [join(model, 'weights.bin')] }] }));
    const err = await rejection(loadModel(abs));
    expect(exitCode(err)).toBe(1);
    expect(err.message).toContain("outside the model's directory");
  });
});
