import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { convertCommand } from '../../src/cli/data.js';
import { shardSource, writeSamples } from '../../src/sources/dataset.js';
import { formatOf, type FormatName } from '../../src/sources/formats.js';
import type { Sample } from '../../src/sources/types.js';
import { png, testImage, tmpDir } from './fixtures.js';
import { collect, from } from '../helpers/streams.js';

function samples(n: number, channels = 1): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `img-${String(i).padStart(3, '0')}`,
    url: 'memory',
    pixels: testImage(6, 5, channels, i),
    height: 6,
    width: 5,
    channels,
    label: i % 4 === 3 ? undefined : i % 3,
  }));
}

/** What a format keeps of a sample: folder and csv put a labelled sample under its label folder. */
const keyAfter = (format: FormatName, s: Sample) => ((format === 'folder' || format === 'csv') && s.label !== undefined ? `${s.label}/${s.key}` : s.key);

describe('every format: writer → reader round trip', () => {
  const cases: [FormatName, string, number][] = [
    ['tar', 'out/train', 4],
    ['msgpack', 'out/train', 4],
    ['csv', 'out/train.csv', 1],
    ['folder', 'out/images', 1],
  ];
  for (const [format, out, files] of cases) {
    it(`${format}: keys, labels (absent ones too) and pixels (8-bit exact)`, async () => {
      const dir = tmpDir();
      for (const channels of [1, 3]) {
        const input = samples(11, channels);
        const target = join(dir, `c${channels}`, out);
        const written = await writeSamples(from(input), target, { format, samplesPerShard: 3 });
        expect(written).toHaveLength(files);
        const spec = format === 'tar' || format === 'msgpack' ? join(dir, `c${channels}`, 'out') : target;
        const back = await collect(shardSource(spec)());
        const byKey = new Map(back.map((s) => [s.key, s]));
        expect([...byKey.keys()].sort()).toEqual(input.map((s) => keyAfter(format, s)).sort());
        for (const s of input) {
          const b = byKey.get(keyAfter(format, s)) as Sample;
          expect(b.label).toBe(s.label);
          expect([b.height, b.width, b.channels]).toEqual([6, 5, channels]);
          expect(Array.from(b.pixels)).toEqual(Array.from(s.pixels));
        }
      }
    });
  }

  it('msgpack float32 keeps pixels exactly, as a view on the record bytes', async () => {
    const dir = tmpDir();
    const input = samples(5, 3).map((s) => ({ ...s, pixels: s.pixels.map((v) => v * 0.9973) }));
    await writeSamples(from(input), join(dir, 'f'), { format: 'msgpack', dtype: 'float32' });
    const back = await collect(shardSource(join(dir, 'f-000000.msgpack'))());
    back.forEach((s, i) => expect(Array.from(s.pixels)).toEqual(Array.from(input[i].pixels)));
    expect(back[0].pixels.buffer.byteLength).toBe(back[0].pixels.byteLength); // its own buffer, transferable
  });

  it('reads msgpack written by other tools (plain maps), and image folders with named classes', async () => {
    const dir = tmpDir();
    const packr = new Packr({ useRecords: false });
    const record = { key: 'py-1', shape: [2, 2], dtype: 'uint8', data: Buffer.from([0, 255, 51, 102]), label: 4, meta: { source: 'python' } };
    writeFileSync(join(dir, 'x.msgpack'), packr.pack(record));
    const [s] = await collect(shardSource(join(dir, 'x.msgpack'))());
    expect([s.key, s.label, s.channels, Array.from(s.pixels)]).toEqual(['py-1', 4, 1, Array.from(Float32Array.from([0, 1, 0.2, 0.4]))]);
    expect(s.meta).toEqual({ source: 'python' });

    const folder = join(dir, 'pets');
    for (const [cls, name] of [['dog', 'a'], ['cat', 'b'], ['cat', 'sub/c']]) {
      mkdirSync(join(folder, cls, 'sub'), { recursive: true });
      writeFileSync(join(folder, cls, `${name}.png`), png(4, 4, 3));
    }
    writeFileSync(join(folder, 'cat', 'notes.txt'), 'not an image');
    writeFileSync(join(folder, 'loose.png'), png(4, 4, 3));
    const got = await collect(shardSource(folder)());
    expect(got.map((g) => [g.key, g.label, g.url])).toEqual([
      ['cat/b', 0, join(folder, 'cat/b.png')],
      ['cat/sub/c', 0, join(folder, 'cat/sub/c.png')],
      ['dog/a', 1, join(folder, 'dog/a.png')],
      ['loose', undefined, join(folder, 'loose.png')],
    ]);
  });

  it('tells formats apart by extension; a local directory without shards is a folder; the rest is tar', () => {
    const dir = tmpDir();
    expect(formatOf('s3://b/x-000001.msgpack')).toBe('msgpack');
    expect(formatOf('https://h/m.csv?sig=1')).toBe('csv');
    expect(formatOf(dir)).toBe('folder');
    expect(formatOf('-')).toBe('tar');
    expect(formatOf('pipe:cat x', 'msgpack')).toBe('msgpack');
    expect(() => formatOf('x', 'zip' as FormatName)).toThrow('unknown data format "zip"; known: auto, tar, msgpack, csv, folder');
  });
});

describe('CSV manifests', () => {
  it('resolves paths relative to the manifest, refuses absolute ones, and reports missing or duplicate rows', async () => {
    const dir = tmpDir();
    mkdirSync(join(dir, 'img'));
    writeFileSync(join(dir, 'img', 'a.png'), png(4, 4, 1, 1));
    writeFileSync(join(dir, 'abs.png'), png(4, 4, 1, 2));
    writeFileSync(
      join(dir, 'm.csv'),
      ['label,path', '3,img/a.png', `,${join(dir, 'abs.png')}`, '1,img/missing.png', '2,img/a.png', 'x,img/b.txt', ''].join('\n'),
    );
    const bad: string[] = [];
    const got = await collect(shardSource(join(dir, 'm.csv'), { onBadSample: (e) => void bad.push(`${e.where.key}: ${e.reason}`) })());
    expect(got.map((s) => [s.key, s.label, s.url])).toEqual([['img/a', 3, join(dir, 'img/a.png')]]);
    expect(bad).toEqual([
      `${join(dir, 'abs')}: row 3: path ${JSON.stringify(join(dir, 'abs.png'))} is absolute; a manifest's paths are relative to it`,
      `img/missing: cannot read the image: no such file`,
      'img/a: duplicate key: "img/a" is listed again (row 5) (occurrence 2)',
      'img/b: row 6: "img/b.txt" is not a .png/.jpg/.jpeg/.webp file',
    ]);
    writeFileSync(join(dir, 'nohead.csv'), 'img/a.png,1\n');
    await expect(collect(shardSource(join(dir, 'nohead.csv'))())).rejects.toThrow('a CSV manifest needs a header row with a "path" column');
  });
});

describe('pbe data convert', () => {
  it('converts tar → msgpack → csv → folder → tar, keeping every sample, with bad samples listed beside the output', async () => {
    const dir = tmpDir();
    const input = samples(9, 3);
    await writeSamples(from(input), join(dir, 'src', 'train'), { samplesPerShard: 4 });
    writeFileSync(join(dir, 'src', 'train-000009.tar'), 'a damaged shard '.repeat(80));
    const common = { quiet: true, onBadSample: 'skip' as const, maxBadSamples: 10, shardSize: 5, dtype: 'uint8' as const, decodeWorkers: 1 };
    const m = await convertCommand({ ...common, from: [join(dir, 'src')], to: join(dir, 'm', 'train'), toFormat: 'msgpack' });
    expect([m.samples, m.written.length, m.badSamples]).toEqual([9, 2, 1]);
    const badCsv = readFileSync(join(dir, 'm', 'bad-samples.csv'), 'utf8').split('\n');
    expect(badCsv[0]).toBe('url,key,reason');
    expect(badCsv[1]).toMatch(/train-000009\.tar,,not a valid tar shard/);
    const c = await convertCommand({ ...common, from: [join(dir, 'm')], to: join(dir, 'c', 'all.csv') });
    expect(c.samples).toBe(9);
    const f = await convertCommand({ ...common, from: [join(dir, 'c', 'all.csv')], to: join(dir, 'f'), toFormat: 'folder' });
    expect(f.samples).toBe(9);
    const t = await convertCommand({ ...common, from: [join(dir, 'f')], to: join(dir, 't', 'x'), shape: '3x3x1', imageSizePolicy: 'resize' });
    expect(t.samples).toBe(9);
    const back = await collect(shardSource(join(dir, 't'))());
    expect(back.map((s) => s.key).sort()).toEqual(input.map((s) => keyAfter('folder', s)).sort());
    expect(back.every((s) => s.height === 3 && s.width === 3 && s.channels === 1)).toBe(true);
  });
});
