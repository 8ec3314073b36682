import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseIdx, readIdx, readIdxImages } from '../../src/sources/idx.js';
import { idxBytes, tmpDir } from './fixtures.js';

describe('readIdx', () => {
  it('reads uint8 images and labels, gzip or plain', async () => {
    const dir = tmpDir();
    const images = Uint8Array.from({ length: 3 * 2 * 4 }, (_, i) => i * 10);
    writeFileSync(join(dir, 'img.gz'), gzipSync(idxBytes(0x08, [3, 2, 4], images)));
    writeFileSync(join(dir, 'lab'), idxBytes(0x08, [3], Uint8Array.from([7, 0, 9])));
    const r = await readIdxImages(join(dir, 'img.gz'), join(dir, 'lab'));
    expect([r.count, r.height, r.width]).toEqual([3, 2, 4]);
    expect(Array.from(r.images)).toEqual(Array.from(images));
    expect(Array.from(r.labels)).toEqual([7, 0, 9]);
    expect((await readIdx(join(dir, 'lab'))).dims).toEqual([3]);
  });

  it('reads big-endian multi-byte types', () => {
    const body = Buffer.alloc(8);
    body.writeInt16BE(-2, 0);
    body.writeInt16BE(300, 2);
    body.writeFloatBE(1.5, 4);
    expect(Array.from(parseIdx(idxBytes(0x0b, [2], body.subarray(0, 4)), 'x').data)).toEqual([-2, 300]);
    expect(Array.from(parseIdx(idxBytes(0x0d, [1], body.subarray(4)), 'x').data)).toEqual([1.5]);
  });

  it('names the file for bad magic, a truncated body, mismatched counts and a missing file', async () => {
    expect(() => parseIdx(Buffer.from([1, 2, 3, 4]), 'f.idx')).toThrow('f.idx: not an IDX file (bad magic number)');
    expect(() => parseIdx(Buffer.from([0, 0, 0x42, 1, 0, 0, 0, 1, 0]), 'f.idx')).toThrow('unknown type byte 0x42');
    expect(() => parseIdx(idxBytes(0x08, [2, 3], new Uint8Array(5)), 'f.idx')).toThrow(
      'f.idx: IDX uint8 array of shape [2, 3] needs 18 bytes, the file has 17 (truncated?)',
    );
    const dir = tmpDir();
    writeFileSync(join(dir, 'img'), idxBytes(0x08, [2, 1, 1], new Uint8Array(2)));
    writeFileSync(join(dir, 'lab'), idxBytes(0x08, [3], new Uint8Array(3)));
    await expect(readIdxImages(join(dir, 'img'), join(dir, 'lab'))).rejects.toThrow('3 labels for 2 images');
    await expect(readIdx(join(dir, 'none.gz'))).rejects.toThrow(`${join(dir, 'none.gz')}: no such file`);
  });
});
