import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/paths.js';
import { shardSource, writeShards } from '../../src/sources/dataset.js';
import { openUrl } from '../../src/sources/open.js';
import { testImage, tmpDir } from './fixtures.js';
import { collect } from '../helpers/streams.js';

/** `-` (stdin, fed by this process to a child running the CLI) and `pipe:CMD`. The CLI is the compiled dist/. */

const cli = join(packageRoot, 'dist', 'src', 'cli', 'main.js');
let dir: string;
let shard: string;

function pbe(args: string[], input?: Buffer) {
  return spawnSync(process.execPath, [cli, ...args], { input, encoding: 'utf8', timeout: 60_000 });
}

beforeAll(async () => {
  dir = tmpDir();
  const samples = (async function* () {
    for (let i = 0; i < 12; i++) yield { key: `k${i}`, url: 'mem', pixels: testImage(5, 5, 1, i), height: 5, width: 5, channels: 1, label: i % 3 };
  })();
  [shard] = await writeShards(samples, join(dir, 'in'), { samplesPerShard: 100 });
});

describe('stdin', () => {
  it('pbe data convert --from - reads a tar piped in by another process', () => {
    expect(existsSync(cli)).toBe(true);
    const r = pbe(['data', 'convert', '--from', '-', '--to', join(dir, 'out', 'x'), '--to-format', 'msgpack', '--log-format', 'json'], readFileSync(shard));
    expect(r.stderr).toContain('"msg":"converted 12 samples to msgpack (1 file)');
    expect(r.status).toBe(0);
    expect(existsSync(join(dir, 'out', 'x-000000.msgpack'))).toBe(true);
  });

  it('refuses to read stdin twice, saying why', () => {
    const r = pbe(['data', 'convert', '--from', '-', '-', '--to', join(dir, 'twice', 'x'), '--quiet'], readFileSync(shard));
    expect(r.stderr).toContain('pbe: -: standard input can be read only once');
    expect(r.status).toBe(1);
  });
});

describe('pipe:', () => {
  it('runs the command only when allowed, streams its stdout, and fails with its exit status and stderr', async () => {
    const url = `pipe:cat '${shard}'`;
    expect(() => openUrl(url)).toThrow(`${url}: a pipe: URL runs a shell command; pass --allow-pipe (allowPipe: true) to allow it`);
    const got = await collect(shardSource(url, { allowPipe: true })());
    expect(got.map((s) => s.key)).toEqual(Array.from({ length: 12 }, (_, i) => `k${i}`));
    await expect(collect(shardSource('pipe:echo oops >&2; exit 3', { allowPipe: true })())).rejects.toThrow('pipe:echo oops >&2; exit 3: command exited with status 3: oops');
    const r = pbe(['data', 'convert', '--from', url, '--to', join(dir, 'p', 'x'), '--quiet']);
    expect(r.stderr).toContain('pass --allow-pipe');
    expect(r.status).toBe(2);
    expect(pbe(['data', 'convert', '--allow-pipe', '--from', url, '--to', join(dir, 'p', 'x'), '--quiet']).status).toBe(0);
  });
});
