import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { encodePng } from '../../src/sources/image.js';

/** A fresh temporary directory for one test. */
export function tmpDir(): string {
  return mkdtempSync(join(tmpdir(), 'pbe-sources-'));
}

/** A tar file with exactly these entries, in order (for shards the writer would refuse to make). */
export async function makeTar(path: string, entries: [name: string, data: Uint8Array | string][]): Promise<string> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => tar.on('end', () => resolve()));
  for (const [name, data] of entries) {
    await new Promise<void>((resolve, reject) => tar.entry({ name }, typeof data === 'string' ? Buffer.from(data) : data, (err) => (err ? reject(err) : resolve())));
  }
  tar.finalize();
  await ended;
  writeFileSync(path, Buffer.concat(chunks));
  return path;
}

/** A deterministic h×w×c test image with values on the 8-bit grid. */
export function testImage(height: number, width: number, channels: number, seed = 0): Float32Array {
  return Float32Array.from({ length: height * width * channels }, (_, i) => ((i * 37 + seed * 11) % 256) / 255);
}

export function png(height: number, width: number, channels: number, seed = 0): Uint8Array {
  return encodePng(testImage(height, width, channels, seed), height, width, channels);
}

/** An IDX file: magic (0, 0, type, ndims), big-endian dims, then the bytes. */
export function idxBytes(type: number, dims: number[], body: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = type;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, body]);
}
