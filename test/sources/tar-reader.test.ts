import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTarShard, splitKey } from '../../src/sources/tar-reader.js';
import type { RawSample } from '../../src/sources/types.js';
import { makeTar, tmpDir } from './fixtures.js';

async function readAll(url: string, opts = {}): Promise<RawSample[]> {
  const out: RawSample[] = [];
  for await (const s of readTarShard(url, opts)) out.push(s);
  return out;
}

const text = (b: Uint8Array | undefined) => Buffer.from(b as Uint8Array).toString();

describe('splitKey', () => {
  it('splits at the first dot of the file name, keeping directories', () => {
    expect(splitKey('a/b/x.seg.PNG')).toEqual({ key: 'a/b/x', ext: 'seg.png' });
    expect(splitKey('v1.2/img.png')).toEqual({ key: 'v1.2/img', ext: 'png' });
    expect(splitKey('README')).toBeUndefined();
    expect(splitKey('dir/.hidden')).toBeUndefined();
  });
});

describe('readTarShard', () => {
  it('groups consecutive files by key, with url and extensions', async () => {
    const url = await makeTar(join(tmpDir(), 'a.tar'), [
      ['d/x1.png', 'P1'], ['d/x1.cls', '3'], ['d/x1.meta.json', '{}'],
      ['d/x2.png', 'P2'],
      ['README', 'skipped: no extension'],
      ['x3.cls', '7'],
    ]);
    const samples = await readAll(url);
    expect(samples.map((s) => [s.key, [...s.files.keys()]])).toEqual([
      ['d/x1', ['png', 'cls', 'meta.json']],
      ['d/x2', ['png']],
      ['x3', ['cls']],
    ]);
    expect(samples.every((s) => s.url === url)).toBe(true);
    expect(text(samples[0].files.get('png'))).toBe('P1');
    expect(text(samples[2].files.get('cls'))).toBe('7');
  });

  it('reads the same shard again from the start', async () => {
    const url = await makeTar(join(tmpDir(), 'a.tar'), [['k.png', 'x']]);
    expect((await readAll(url)).length).toBe(1);
    expect((await readAll(url)).length).toBe(1);
  });

  it('names the url for a file that is not a tar', async () => {
    const url = join(tmpDir(), 'not.tar');
    writeFileSync(url, Buffer.alloc(4096, 'garbage '));
    await expect(readAll(url)).rejects.toThrow(`${url}: not a valid tar shard: Invalid tar header`);
  });

  it('names the url for an empty file', async () => {
    const url = join(tmpDir(), 'empty.tar');
    writeFileSync(url, '');
    await expect(readAll(url)).rejects.toThrow(`${url}: empty file (0 bytes), not a tar shard`);
  });

  it('names the url, the sample it broke in and the last good one for a truncated tar', async () => {
    const dir = tmpDir();
    const whole = await makeTar(join(dir, 'whole.tar'), [
      ['s0.png', Buffer.alloc(3000, 1)], ['s0.cls', '0'],
      ['s1.png', Buffer.alloc(3000, 2)], ['s1.cls', '1'],
    ]);
    const url = join(dir, 'cut.tar');
    writeFileSync(url, readFileSync(whole).subarray(0, 512 * 10 + 1000)); // inside s1.png's body
    const seen: string[] = [];
    const read = (async () => {
      for await (const s of readTarShard(url)) seen.push(s.key);
    })();
    await expect(read).rejects.toThrow(`${url} (sample s1): not a valid tar shard: Unexpected end of data (in entry "s1.png"; last complete sample "s0")`);
    expect(seen).toEqual(['s0']);
  });

  it('marks an entry over the size limit bad without holding it, and reads on', async () => {
    const url = await makeTar(join(tmpDir(), 'big.tar'), [['ok.png', 'x'], ['big.png', Buffer.alloc(2000)]]);
    const got = await readAll(url, { maxEntryBytes: 1024 });
    expect(got.map((s) => [s.key, s.error])).toContainEqual(['big', 'tar entry "big.png" is 2000 bytes, over the limit of 1024 (maxEntryBytes)']);
    expect(got.find((s) => s.key === 'big')?.files.has('png')).toBe(false);
  });

  it('marks the same extension twice for one key bad', async () => {
    const url = await makeTar(join(tmpDir(), 'dup.tar'), [['k.png', 'a'], ['k.png', 'b']]);
    const got = await readAll(url);
    expect(got.map((s) => [s.key, s.error])).toEqual([['k', 'duplicate file "k.png" in the tar (extension png twice for one key)']]);
  });

  it('names a missing shard', async () => {
    const url = join(tmpDir(), 'missing.tar');
    await expect(readAll(url)).rejects.toThrow(`${url}: no such file`);
  });

  it('stops cleanly when the consumer stops early', async () => {
    const url = await makeTar(join(tmpDir(), 'a.tar'), [['a.png', 'x'], ['b.png', 'y'], ['c.png', 'z']]);
    const keys: string[] = [];
    for await (const s of readTarShard(url)) {
      keys.push(s.key);
      if (keys.length === 1) break;
    }
    expect(keys).toEqual(['a']);
  });
});

describe('readTarShard on a tar cut between two entries', () => {
  it('notices the missing end-of-archive blocks and does not pass on the last, maybe partial, sample', async () => {
    const dir = tmpDir();
    const whole = await makeTar(join(dir, 'whole.tar'), [['s0.png', 'a'], ['s0.cls', '0'], ['s1.png', 'b'], ['s1.cls', '1']]);
    const url = join(dir, 'cut.tar');
    writeFileSync(url, readFileSync(whole).subarray(0, 512 * 6)); // s0.png, s0.cls, s1.png: whole entries, no end blocks
    const seen: string[] = [];
    const read = (async () => {
      for await (const s of readTarShard(url)) seen.push(s.key);
    })();
    await expect(read).rejects.toThrow(`${url} (sample s1): truncated tar shard: it ends without the end-of-archive blocks (after entry "s1.png"; last complete sample "s0")`);
    expect(seen).toEqual(['s0']);
  });
});
