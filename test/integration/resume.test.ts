import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { saveModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/zoo.js';
import { fitModel } from '../../src/pipeline/fit.js';
import { writeShards } from '../../src/sources/dataset.js';
import { runCli as runInProcess, spawnCli } from '../helpers/cli.js';
import { memoryCorpus, syntheticSquares } from '../helpers/memory-corpus.js';

/**
 * Crash safety of `pbe purify` through the CLI: a run killed with SIGKILL at many points (training steps in every
 * round, mid-checkpoint write, the end-of-round and reference passes) and resumed with --resume ends with the same
 * weights and scores as an uninterrupted run; SIGTERM checkpoints and exits with code 75. The runs that are killed
 * or signalled are processes of the compiled CLI; the uninterrupted runs and the resumes run the same program in
 * this process (so the results also agree across processes).
 */
const env = { PBE_BACKEND: 'wasm' };
const runCli = (args: string[]) => runInProcess(args, env);
const killCli = (args: string[], failpoint: string) => spawnCli(args, { env: { ...env, PBE_FAILPOINT: failpoint } });

describe('purify survives being killed', () => {
  let dir: string;
  let args: (out: string) => string[];
  let baseline: { weights: Buffer; scores: string; metrics: string[] };

  const outputs = (out: string) => ({
    weights: readFileSync(join(out, 'model/weights.bin')),
    scores: readFileSync(join(out, 'scores.csv'), 'utf8'),
    metrics: readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n').map((l) => l.split(',').filter((_, i) => i !== 10).join(',')),
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pbe-resume-'));
    await initBackend('wasm');
    const samples = syntheticSquares(240, 5);
    await writeShards((async function* () { yield* samples; })(), join(dir, 'data/train'), { samplesPerShard: 120 });
    const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
    await fitModel(model, memoryCorpus(samples), { epochs: 2, batchSize: 32, lr: 0.003, seed: 1, log: () => {} });
    await saveModel(model, join(dir, 'infected'));
    writeFileSync(join(dir, 'short.json'), JSON.stringify({
      batchSize: 16,
      initialFraction: 0.25,
      // the probes run (and their state is checkpointed), cheaply: PGD on 32 samples, 5 inversion steps
      probe: { samples: 32 },
      inversion: { steps: 5, refineSteps: 5 },
      keepRatio: [0.5, 0.75],
      rounds: [
        { epochs: 2, adversarial: { epochs: 2, share: 1, maxBatches: null } },
        { epochs: 2, adversarial: { epochs: 1, share: 1, maxBatches: 2 } },
        { epochs: 1, adversarial: { epochs: 0, share: 1, maxBatches: null } },
      ],
    }));
    args = (out) => ['purify', '--model', join(dir, 'infected'), '--data', join(dir, 'data/train-*.tar'), '--out', out, '--config', join(dir, 'short.json'), '--eps', '0.05', '--lr', '0.01', '--compute-workers', '1', '--log-format', 'json'];
    const first = await runCli(args(join(dir, 'baseline')));
    expect(first.code, first.stderr).toBe(0);
    baseline = outputs(join(dir, 'baseline'));
    expect(baseline.metrics).toHaveLength(1 + 5);
  }, 300_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // 36 training steps (8 in round 0, 16 in round 1, 12 in round 2), 8 checkpoints, 3 similarity passes.
  const killPoints = [
    'reference-batch:1', 'train-step:1', 'train-step:6', 'train-step:9', 'train-step:17', 'train-step:24',
    'train-step:30', 'train-step:36', 'checkpoint-write:1', 'checkpoint-write:3', 'checkpoint-write:6',
    'similarity-batch:1', 'similarity-batch:3',
  ];
  for (const point of killPoints) {
    it(`SIGKILL at ${point}, then --resume, gives the uninterrupted result`, async () => {
      const out = join(dir, point.replace(':', '-'));
      const killed = await killCli(args(out), point);
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const resumed = await runCli(['purify', '--resume', out, '--log-format', 'json']);
      expect(resumed.code, resumed.stderr).toBe(0);
      const got = outputs(out);
      expect(got.weights.equals(baseline.weights)).toBe(true);
      expect(got.scores).toBe(baseline.scores);
      expect(got.metrics).toEqual(baseline.metrics);
    }, 120_000);
  }

  it('SIGTERM finishes the step, writes a checkpoint, exits with 75, and the run resumes to the same result', async () => {
    const out = join(dir, 'sigterm');
    let sent = false;
    const stopped = await spawnCli(args(out), {
      env,
      onStderr: (text, child) => {
        if (!sent && text.includes('"round":0,"epoch":1')) {
          sent = true;
          child.kill('SIGTERM');
        }
      },
    });
    expect(stopped.code, stopped.stderr).toBe(75);
    expect(stopped.stderr).toMatch(/SIGTERM: stopping after the current step/);
    expect(existsSync(join(out, 'checkpoint/checkpoint.msgpack'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).status).toBe('stopped');
    const resumed = await runCli(['purify', '--resume', out, '--log-format', 'json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const got = outputs(out);
    expect(got.weights.equals(baseline.weights)).toBe(true);
    expect(got.scores).toBe(baseline.scores);
  }, 120_000);

  it('with weights refreshed per epoch, a resume in the middle of an epoch attacks with the epoch-start weights', async () => {
    const epochArgs = (out: string) => [...args(out), '--weights-refresh', 'epoch', '--checkpoint-every', '0'];
    const uninterrupted = await runCli(epochArgs(join(dir, 'epoch-baseline')));
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);
    const out = join(dir, 'epoch-killed');
    const killed = await killCli(epochArgs(out), 'train-step:6'); // round 0, epoch 1, batch 2 of 4
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const resumed = await runCli(['purify', '--resume', out, '--log-format', 'json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming at round 0 epoch 1 batch 1/);
    const expected = outputs(join(dir, 'epoch-baseline'));
    const got = outputs(out);
    expect(got.weights.equals(expected.weights)).toBe(true);
    expect(got.scores).toBe(expected.scores);
  }, 180_000);

  it('--resume of a complete run is a clear usage error', async () => {
    const r = await runCli(['purify', '--resume', join(dir, 'baseline'), '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('already complete');
  });
});
