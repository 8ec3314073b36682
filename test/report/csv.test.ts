import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCsvAtomic } from '../../src/report/csv.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pbe-csv-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeCsvAtomic', () => {
  it('streams rows from a generator, quoting where needed and formatting numbers and booleans', async () => {
    const path = join(dir, 'a.csv');
    await writeCsvAtomic(path, ['key', 'x', 'ok', 'empty'], (function* () {
      yield { key: 'a,b', x: 0.123456789, ok: true };
      yield { key: 'say "hi"', x: 3, ok: false, empty: null };
    })());
    expect(await readFile(path, 'utf8')).toBe('key,x,ok,empty\n"a,b",0.123457,1,\n"say ""hi""",3,0,\n');
  });

  it('writes the header alone for no rows', async () => {
    const path = join(dir, 'b.csv');
    await writeCsvAtomic(path, ['key', 'x'], []);
    expect(await readFile(path, 'utf8')).toBe('key,x\n');
  });

  it('leaves neither the file nor a temporary file behind when the rows fail part way', async () => {
    const path = join(dir, 'c.csv');
    const rows = (function* () {
      yield { key: 'a' };
      throw new Error('boom');
    })();
    await expect(writeCsvAtomic(path, ['key'], rows)).rejects.toThrow('boom');
    expect((await readdir(dir)).filter((f) => f.startsWith('c.csv'))).toEqual([]);
  });
});
