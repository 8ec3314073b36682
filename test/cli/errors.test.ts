import * as tf from '@tensorflow/tfjs';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/zoo.js';
import { runCli } from '../helpers/cli.js';
import { makeTar, png, tmpDir } from '../sources/fixtures.js';

/** Bad input through the CLI's own program, run in process as main.ts runs it: one line naming the file or key, and the exit code. */
const run = (args: string[]) => runCli(args, { PBE_BACKEND: 'cpu' });

describe('pbe reports bad input in one line naming the file or sample', () => {
  let dir: string;
  let model: string;
  beforeAll(async () => {
    dir = tmpDir();
    model = join(dir, 'model');
    await tf.setBackend('cpu');
    await saveModel(buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 }), model);
  });

  const expectOneLine = (stderr: string, ...parts: string[]) => {
    const lines = stderr.trim().split('\n').filter((l) => l.startsWith('pbe: '));
    expect(lines).toHaveLength(1);
    for (const p of parts) expect(lines[0]).toContain(p);
    expect(stderr).not.toMatch(/^\s+at /m);
  };

  it('a missing model file', async () => {
    const r = await run(['eval', '--model', join(dir, 'nope'), '--data', join(dir, 'x.tar'), '--quiet']);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, join(dir, 'nope'), 'no such model');
  });

  it('a shard that is not a tar', async () => {
    const shard = join(dir, 'junk.tar');
    writeFileSync(shard, 'this is not a tar archive, just text, long enough to fill a header block?'.repeat(20));
    const r = await run(['eval', '--model', model, '--data', shard, '--on-bad-sample', 'fail', '--quiet']);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, shard);
  });

  it('a sample without an image', async () => {
    const shard = await makeTar(join(dir, 'noimage.tar'), [['a.png', png(28, 28, 1)], ['a.cls', '1'], ['b.cls', '2']]);
    const r = await run(['eval', '--model', model, '--data', shard, '--on-bad-sample', 'fail', '--quiet']);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, shard, 'b');
  });

  it('an image of the wrong size for the model', async () => {
    const shard = await makeTar(join(dir, 'big.tar'), [['big-1.png', png(32, 32, 1)], ['big-1.cls', '3']]);
    const r = await run(['eval', '--model', model, '--data', shard, '--on-bad-sample', 'fail', '--quiet']);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, shard, 'big-1', '32');
  });

  it('skipped bad samples are counted and listed, not dropped silently', async () => {
    const shard = await makeTar(join(dir, 'mixed.tar'), [['ok.png', png(28, 28, 1)], ['ok.cls', '1'], ['bad.png', new Uint8Array(0)], ['bad.cls', '2']]);
    const r = await run(['eval', '--model', model, '--data', shard, '--json', '--log-format', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).samples).toBe(1);
    expect(r.stderr).toContain('"key":"bad"');
    expect(r.stderr).toContain('1 bad sample');
  });

  it('purify --dry-run prints the pipeline and the merged config and writes nothing', async () => {
    const shard = await makeTar(join(dir, 'one.tar'), [['k.png', png(28, 28, 1)], ['k.cls', '1']]);
    const out = join(dir, 'dry');
    const r = await run(['purify', '--model', model, '--data', shard, '--out', out, '--preset', 'fashion-mnist', '--compute-workers', '2', '--dry-run', '--quiet']);
    expect(r.code).toBe(0);
    const [probes, pipeline, ...config] = r.stdout.split('\n');
    expect(probes).toMatch(/^probes on 512 samples: PGD at eps 0.05; trigger inversion \(50 steps per class, 300 for a flagged one\)/);
    // every stage the first epoch runs, as the engine builds it
    expect(pipeline).toMatch(
      /^round 0, with linf-pgd: tar\(1 shard\) -> select\(S_0: 0\) -> shuffle\(10000\) -> decode.* -> labels\(auto\) -> batch\(128\) -> mix\(adversarial=1, first all batches\) -> skip\(0\) -> prefetch\(2\) -> pgd\+gradients\(eps=0.05, steps=7, data-parallel on 2 workers\) -> train\(sgd lr=0.01\)$/,
    );
    expect(JSON.parse(config.join('\n')).pgd.eps).toBe(0.05);
    expect(existsSync(out)).toBe(false);
  });

  it('an unknown preset is a usage error naming the known ones', async () => {
    const r = await run(['purify', '--model', model, '--data', join(dir, 'mixed.tar'), '--out', join(dir, 'run'), '--preset', 'cifar', '--quiet']);
    expect(r.code).toBe(2);
    expectOneLine(r.stderr, 'unknown preset "cifar"', 'fashion-mnist');
  });
});
