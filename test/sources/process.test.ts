import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { shardSource, writeShards } from '../../src/sources/dataset.js';
import { openUrl } from '../../src/sources/open.js';
import { testImage, tmpDir } from './fixtures.js';
import { compiledCli, runCli, spawnCli } from '../helpers/cli.js';
import { collect } from '../helpers/streams.js';

/** `-` (stdin, fed by this process to a child running the compiled CLI) and `pipe:CMD` (the CLI's program, in process). */

let dir: string;
let shard: string;

beforeAll(async () => {
  dir = tmpDir();
  const samples = (async function* () {
    for (let i = 0; i < 12; i++) yield { key: `k${i}`, url: 'mem', pixels: testImage(5, 5, 1, i), height: 5, width: 5, channels: 1, label: i % 3 };
  })();
  [shard] = await writeShards(samples, join(dir, 'in'), { samplesPerShard: 100 });
});

describe('stdin', () => {
  it('pbe data convert --from - reads a tar piped in by another process', async () => {
    expect(existsSync(compiledCli)).toBe(true);
    const r = await spawnCli(['data', 'convert', '--from', '-', '--to', join(dir, 'out', 'x'), '--to-format', 'msgpack', '--log-format', 'json'], { input: readFileSync(shard) });
    expect(r.stderr).toContain('"msg":"converted 12 samples to msgpack (1 file)');
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'out', 'x-000000.msgpack'))).toBe(true);
  });

  it('refuses to read stdin twice, saying why', async () => {
    const r = await spawnCli(['data', 'convert', '--from', '-', '-', '--to', join(dir, 'twice', 'x'), '--quiet'], { input: readFileSync(shard) });
    expect(r.stderr).toContain('pbe: -: standard input can be read only once');
    expect(r.code).toBe(1);
  });
});

describe('pipe:', () => {
  it('runs the command only when allowed, streams its stdout, and fails with its exit status and stderr', async () => {
    const url = `pipe:cat '${shard}'`;
    expect(() => openUrl(url)).toThrow(`${url}: a pipe: URL runs a shell command; pass --allow-pipe (allowPipe: true) to allow it`);
    const got = await collect(shardSource(url, { allowPipe: true })());
    expect(got.map((s) => s.key)).toEqual(Array.from({ length: 12 }, (_, i) => `k${i}`));
    await expect(collect(shardSource('pipe:echo oops >&2; exit 3', { allowPipe: true })())).rejects.toThrow('pipe:echo oops >&2; exit 3: command exited with status 3: oops');
    const r = await runCli(['data', 'convert', '--from', url, '--to', join(dir, 'p', 'x'), '--quiet']);
    expect(r.stderr).toContain('pass --allow-pipe');
    expect(r.code).toBe(2);
    expect((await runCli(['data', 'convert', '--allow-pipe', '--from', url, '--to', join(dir, 'p', 'x'), '--quiet'])).code).toBe(0);
  });
});
