import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/zoo.js';
import { writeShards } from '../../src/sources/dataset.js';
import { runCli } from '../helpers/cli.js';
import { testImage, tmpDir } from './fixtures.js';

/** End to end through the CLI's program (run in process): `pbe eval` on shards served over HTTP that drops connections. */

let dir: string;
let server: http.Server;
let port: number;
const ranges: string[] = [];

beforeAll(async () => {
  dir = tmpDir();
  const samples = (async function* () {
    for (let i = 0; i < 60; i++) {
      const label = i === 7 ? undefined : i % 10; // one unlabelled sample: eval needs labels, so it is a bad sample
      yield { key: `t-${String(i).padStart(3, '0')}`, url: 'mem', pixels: testImage(28, 28, 1, i), height: 28, width: 28, channels: 1, label };
    }
  })();
  await writeShards(samples, join(dir, 'test'), { samplesPerShard: 30 });
  await saveModel(buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 }), join(dir, 'model'));
  let served = 0;
  server = http.createServer((req, res) => {
    let body: Buffer;
    try {
      body = readFileSync(join(dir, (req.url ?? '').slice(1)));
    } catch {
      res.writeHead(404).end();
      return;
    }
    const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (req.headers.range) ranges.push(req.headers.range);
    res.writeHead(start ? 206 : 200, { 'content-length': body.length - start });
    if (served++ % 2 === 0 && body.length - start > 8000) {
      res.write(body.subarray(start, start + 8000), () => setTimeout(() => res.socket?.destroy(), 5)); // every other response is cut
      return;
    }
    res.end(body.subarray(start));
  });
  port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
});

afterAll(() => {
  server?.close();
});

describe('pbe eval --data http://...', () => {
  it('evaluates every labelled sample of shards whose connections drop, and partitions them', async () => {
    const data = `http://127.0.0.1:${port}/test-{000000..000001}.tar`;
    const base = ['eval', '--model', join(dir, 'model'), '--data', data, '--json', '--backend', 'cpu', '--log-format', 'json'];
    const all = await runCli([...base, '--decode-workers', '2']);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout).samples).toBe(59);
    expect(all.stderr).toContain('missing label (no .cls file), and this command needs labels');
    expect(all.stderr).toContain('evaluation skipped 1 bad sample');
    expect(ranges.length).toBeGreaterThan(0);
    const part = await runCli([...base, '--shard-index', '1', '--num-shards', '2', '--decode-workers', '0']);
    expect(part.code, part.stderr).toBe(0);
    expect(JSON.parse(part.stdout).samples).toBe(30);
  });
});
