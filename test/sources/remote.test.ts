import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadSampleLog } from '../../src/sources/bad-samples.js';
import { shardSource, writeShards } from '../../src/sources/dataset.js';
import { openUrl } from '../../src/sources/open.js';
import { testImage, tmpDir } from './fixtures.js';
import { collect } from '../helpers/streams.js';

/** Real servers on 127.0.0.1, started and stopped here: plain HTTP (with dropped connections), s3rver, a GCS stand-in. */

const N = 40; // samples per shard
let dir: string;
let shards: string[];

async function readAll(url: string, opts = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of openUrl(url, opts)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  dir = tmpDir();
  const samples = (async function* () {
    for (let i = 0; i < 2 * N; i++) {
      yield { key: `s-${String(i).padStart(4, '0')}`, url: 'mem', pixels: testImage(16, 16, 3, i), height: 16, width: 16, channels: 3, label: i % 10 };
    }
  })();
  shards = await writeShards(samples, join(dir, 'test'), { samplesPerShard: N });
});

describe('http(s)', () => {
  /** Serves the shards; each request's body is cut after `cutAfter` bytes until `cuts` cuts were made. */
  function cuttingServer(opts: { cutAfter: number; cuts: number; ignoreRange?: boolean; failFirst?: number }) {
    const log: { path: string; range?: string; status: number }[] = [];
    let cuts = 0;
    let failures = 0;
    const server = http.createServer((req, res) => {
      const name = (req.url ?? '').slice(1);
      let body: Buffer;
      try {
        body = readFileSync(join(dir, name));
      } catch {
        log.push({ path: name, status: 404 });
        res.writeHead(404).end('no such object');
        return;
      }
      if (failures < (opts.failFirst ?? 0)) {
        failures++;
        log.push({ path: name, status: 503 });
        res.writeHead(503).end('busy');
        return;
      }
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = range && !opts.ignoreRange ? Number(range[1]) : 0;
      const status = start > 0 ? 206 : 200;
      log.push({ path: name, range: req.headers.range, status });
      res.writeHead(status, {
        'content-length': body.length - start,
        etag: '"v1"',
        ...(status === 206 ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      });
      const part = body.subarray(start);
      if (cuts < opts.cuts && part.length > opts.cutAfter) {
        cuts++;
        res.write(part.subarray(0, opts.cutAfter), () => setTimeout(() => res.socket?.destroy(), 5));
        return;
      }
      res.end(part);
    });
    return { server, log };
  }

  it('resumes a shard cut mid-stream by Range, and yields every sample exactly once', async () => {
    const { server, log } = cuttingServer({ cutAfter: 7000, cuts: 3 });
    const port = await listen(server);
    try {
      const spec = `http://127.0.0.1:${port}/test-{000000..000001}.tar`;
      const got = await collect(shardSource(spec, { retryDelayMs: 1, expected: { height: 16, width: 16, channels: 3 } })());
      expect(got.map((s) => s.key)).toEqual(Array.from({ length: 2 * N }, (_, i) => `s-${String(i).padStart(4, '0')}`));
      expect(got.map((s) => s.label)).toEqual(Array.from({ length: 2 * N }, (_, i) => i % 10));
      expect(Array.from(got[N + 3].pixels)).toEqual(Array.from(testImage(16, 16, 3, N + 3)));
      expect(log.filter((r) => r.status === 206).map((r) => r.range)).toEqual(['bytes=7000-', 'bytes=14000-', 'bytes=21000-']);
    } finally {
      server.close();
    }
  });

  it('retries a 503, restarts when the server ignores Range, and names a 404 without retrying', async () => {
    const { server, log } = cuttingServer({ cutAfter: 5000, cuts: 1, ignoreRange: true, failFirst: 2 });
    const port = await listen(server);
    try {
      const url = `http://127.0.0.1:${port}/test-000000.tar`;
      const messages: string[] = [];
      expect((await readAll(url, { retryDelayMs: 1, log: (m: string) => messages.push(m) })).equals(readFileSync(shards[0]))).toBe(true);
      expect(log.map((r) => r.status)).toEqual([503, 503, 200, 200]);
      expect(messages[0]).toMatch(/HTTP 503 Service Unavailable; retrying from byte 0/);
      expect(messages[2]).toMatch(/retrying from byte 5000/);
      const before = log.length;
      await expect(readAll(`http://127.0.0.1:${port}/missing.tar`, { retryDelayMs: 1 })).rejects.toThrow(`http://127.0.0.1:${port}/missing.tar: HTTP 404 Not Found`);
      expect(log.length).toBe(before + 1);
    } finally {
      server.close();
    }
  });

  it('gives up after `retries` failures in a row, naming the url and the byte offset', async () => {
    const { server } = cuttingServer({ cutAfter: 3000, cuts: 100 });
    const port = await listen(server);
    try {
      const url = `http://127.0.0.1:${port}/test-000000.tar`;
      // every response is cut after 3000 bytes: progress each time, so it goes on; with no progress it stops
      expect((await readAll(url, { retryDelayMs: 1, retries: 2 })).length).toBe(readFileSync(shards[0]).length);
      const dead = http.createServer((req) => req.socket.destroy());
      const deadPort = await listen(dead);
      try {
        await expect(readAll(`http://127.0.0.1:${deadPort}/x.tar`, { retryDelayMs: 1, retries: 2 })).rejects.toThrow(
          `http://127.0.0.1:${deadPort}/x.tar: read failed after 2 retries at byte 0: socket hang up`,
        );
      } finally {
        dead.close();
      }
    } finally {
      server.close();
    }
  });
});

describe('s3 (s3rver on 127.0.0.1, through @aws-sdk/client-s3)', () => {
  let s3rver: S3rver;
  let endpoint: string;

  beforeAll(async () => {
    s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: tmpDir() });
    const { port } = (await s3rver.run()) as AddressInfo;
    endpoint = `http://127.0.0.1:${port}`;
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
    const client = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1' });
    await client.send(new CreateBucketCommand({ Bucket: 'corpus' }));
    for (const [i, path] of shards.entries()) {
      await client.send(new PutObjectCommand({ Bucket: 'corpus', Key: `fmnist/test-00000${i}.tar`, Body: readFileSync(path) }));
    }
    client.destroy();
  });

  afterAll(async () => {
    await s3rver?.close();
  });

  it('streams shards from a bucket, with a partition, and names a missing key', async () => {
    const spec = 's3://corpus/fmnist/test-{000000..000001}.tar';
    const all = await collect(shardSource(spec, { s3Endpoint: endpoint })());
    expect(all.length).toBe(2 * N);
    expect(all[0].url).toBe('s3://corpus/fmnist/test-000000.tar');
    const second = await collect(shardSource(spec, { s3Endpoint: endpoint, shardIndex: 1, numShards: 2 })());
    expect(second.map((s) => s.key)).toEqual(all.slice(N).map((s) => s.key));
    expect(shardSource(spec, { s3Endpoint: endpoint }).summary()).toBe('tar(2 shards via s3) -> decode');
    await expect(readAll('s3://corpus/fmnist/nope.tar', { s3Endpoint: endpoint, retryDelayMs: 1 })).rejects.toThrow(/^s3:\/\/corpus\/fmnist\/nope.tar: not found \(NoSuchKey/);
  });
});

describe('gs (a Cloud Storage JSON API stand-in on 127.0.0.1, through @google-cloud/storage)', () => {
  it('streams an object, resuming with a ranged read after a cut the client does not notice (idle timeout)', async () => {
    const body = readFileSync(shards[1]);
    const requests: string[] = [];
    let cut = false;
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '', 'http://x');
      requests.push(`${url.pathname} ${req.headers.range ?? ''}`.trim());
      const m = /^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/.exec(url.pathname);
      if (!m || m[1] !== 'bkt' || decodeURIComponent(m[2]) !== 'dir/test-000001.tar') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 404, message: 'No such object' } }));
        return;
      }
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(start ? 206 : 200, { 'content-length': body.length - start, 'content-type': 'application/octet-stream' });
      if (!cut) {
        cut = true;
        res.write(body.subarray(start, start + 10_000), () => setTimeout(() => res.socket?.destroy(), 5));
        return;
      }
      res.end(body.subarray(start));
    });
    const port = await listen(server);
    try {
      const opts = { gsEndpoint: `http://127.0.0.1:${port}`, retryDelayMs: 1, idleTimeoutMs: 500 };
      expect((await readAll('gs://bkt/dir/test-000001.tar', opts)).equals(body)).toBe(true);
      expect(requests).toEqual(['/storage/v1/b/bkt/o/dir%2Ftest-000001.tar bytes=0-', '/storage/v1/b/bkt/o/dir%2Ftest-000001.tar bytes=10000-']);
      const got = await collect(shardSource('gs://bkt/dir/test-000001.tar', opts)());
      expect(got.map((s) => s.key)).toEqual(Array.from({ length: N }, (_, i) => `s-${String(N + i).padStart(4, '0')}`));
      const log = new BadSampleLog({ policy: 'skip' });
      await expect(collect(shardSource('gs://bkt/missing.tar', { ...opts, onBadSample: log.handler })())).rejects.toThrow(/^gs:\/\/bkt\/missing.tar: not found/);
    } finally {
      server.close();
    }
  });
});
