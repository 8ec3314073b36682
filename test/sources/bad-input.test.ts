import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Packr } from 'msgpackr';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { BadSampleLog } from '../../src/sources/bad-samples.js';
import { shardSource } from '../../src/sources/dataset.js';
import type { Sample } from '../../src/sources/types.js';
import { makeTar, png, tmpDir } from './fixtures.js';

/**
 * One fixture per kind of bad input, each beside good samples: under policy skip every bad one is listed with
 * its shard URL, key and reason, every good one comes through, and nothing stops the stream.
 */

const packr = new Packr({ useRecords: false });
const record = (key: string, shape: number[], data: Uint8Array, label?: number) => packr.pack({ key, shape, dtype: 'uint8', data, label });
const gray = (n: number) => new Uint8Array(n).fill(128);

let dir: string;
let expected: [shard: string, key: string, reason: RegExp | string][];

beforeAll(async () => {
  dir = tmpDir();
  const ok = (key: string, label = '1'): [string, Uint8Array | string][] => [[`${key}.png`, png(4, 4, 3)], [`${key}.cls`, label]];
  // a PNG whose header claims 60000×60000 pixels: 33 bytes that would inflate to gigabytes
  const bombPng = Buffer.from(png(4, 4, 3));
  bombPng.writeUInt32BE(60000, 16);
  bombPng.writeUInt32BE(60000, 20);
  const bigJpeg = await sharp({ create: { width: 1500, height: 1000, channels: 3, background: { r: 0, g: 0, b: 0 } } }).jpeg().toBuffer();

  await makeTar(join(dir, 'a-images.tar'), [
    ...ok('good-a'),
    ['zero.png', ''], ['zero.cls', '1'],
    ['garbage.png', 'this is not a png image at all'], ['garbage.cls', '1'],
    ['bomb.png', bombPng], ['bomb.cls', '1'],
    ['bigjpeg.jpg', bigJpeg], ['bigjpeg.cls', '1'],
    ['huge.png', Buffer.alloc(20_000, 1)], ['huge.cls', '1'],
    ...ok('good-b'),
  ]);
  await makeTar(join(dir, 'b-labels.tar'), [
    ...ok('good-c'),
    ['nolabel.png', png(4, 4, 3)],
    ['word.png', png(4, 4, 3)], ['word.cls', 'cat'],
    ['neg.png', png(4, 4, 3)], ['neg.cls', '-1'],
    ['meta.png', png(4, 4, 3)], ['meta.cls', '2'], ['meta.json', '{"broken": '],
    ...ok('good-d'),
    ...ok('good-c', '2'), // the key again, after others
  ]);
  writeFileSync(
    join(dir, 'c-records.msgpack'),
    Buffer.concat([
      record('good-e', [4, 4, 3], gray(48), 3),
      record('two-ch', [4, 4, 2], gray(32), 1),
      record('four-ch', [4, 4, 4], gray(64), 1),
      record('short', [4, 4, 3], gray(10), 1),
      packr.pack({ key: 'nodtype', shape: [4, 4, 3], data: gray(48) }),
      record('good-e', [4, 4, 3], gray(48), 3),
      record('good-f', [4, 4, 1], gray(16), 3),
    ]),
  );
  const whole = readFileSync(await makeTar(join(dir, 'tmp.tar'), [...ok('good-g'), ...ok('lost')]));
  writeFileSync(join(dir, 'd-truncated.tar'), whole.subarray(0, whole.length - 1024 - 300));
  writeFileSync(join(dir, 'e-corrupt.tar'), Buffer.alloc(3000, 'x'));
  writeFileSync(join(dir, 'f-empty.tar'), '');
  const records = Buffer.concat([record('good-h', [4, 4, 3], gray(48), 1), record('cut', [4, 4, 3], gray(48))]);
  writeFileSync(join(dir, 'g-truncated.msgpack'), records.subarray(0, records.length - 7));
  writeFileSync(join(dir, 'h-corrupt.msgpack'), Buffer.from([0x93, 1, 2, 3, 0xc1, 0xc1]));

  expected = [
    ['a-images.tar', 'zero', 'empty .png file (0 bytes)'],
    ['a-images.tar', 'garbage', /^not a PNG image/],
    ['a-images.tar', 'bomb', 'PNG of 60000x60000 pixels is over the limit of 1000000 pixels (maxPixels)'],
    ['a-images.tar', 'bigjpeg', 'JPEG image is over the limit of 1000000 pixels (maxPixels)'],
    ['a-images.tar', 'huge', 'tar entry "huge.png" is 20000 bytes, over the limit of 16000 (maxEntryBytes)'],
    ['b-labels.tar', 'nolabel', 'missing label (no .cls file), and this command needs labels'],
    ['b-labels.tar', 'word', '.cls label "cat" is not a non-negative integer'],
    ['b-labels.tar', 'neg', '.cls label "-1" is not a non-negative integer'],
    ['b-labels.tar', 'meta', /^\.json metadata is not valid JSON/],
    ['b-labels.tar', 'good-c', 'duplicate key: "good-c" appears again after other samples in this shard (occurrence 2)'],
    ['c-records.msgpack', 'two-ch', 'image has 2 channels, expected 3'],
    ['c-records.msgpack', 'four-ch', 'image has 4 channels, expected 3'],
    ['c-records.msgpack', 'short', 'record data has 10 bytes, shape [4,4,3] of uint8 needs 48'],
    ['c-records.msgpack', 'nodtype', 'record dtype undefined is not "uint8" or "float32"'],
    ['c-records.msgpack', 'good-e', 'duplicate key: "good-e" appears twice in this shard (occurrence 2)'],
    ['d-truncated.tar', 'lost', /^not a valid tar shard: Unexpected end of data .*last complete sample "good-g"/],
    ['e-corrupt.tar', '', /^not a valid tar shard: Invalid tar header/],
    ['f-empty.tar', '', 'empty file (0 bytes), not a tar shard'],
    ['g-truncated.msgpack', '', 'not a valid msgpack record shard: Unexpected end of MessagePack data (last complete record "good-h")'],
    ['h-corrupt.msgpack', '', 'not a valid msgpack record shard: value #1 is an array, not a record map (no complete record before it)'],
  ];
});

const read = async (log: BadSampleLog, workers: number) => {
  const source = shardSource(`${dir}/{a-images,b-labels,d-truncated,e-corrupt,f-empty}.tar ${dir}/{c-records,g-truncated,h-corrupt}.msgpack`, {
    expected: { height: 4, width: 4, channels: 3 },
    requireLabels: true,
    maxEntryBytes: 16_000,
    maxPixels: 1_000_000,
    workers,
    onBadSample: log.handler,
  });
  const out: Sample[] = [];
  for await (const s of source()) out.push(s);
  return out;
};

describe('bad input: listed, counted, never a crash (policy skip)', () => {
  for (const workers of [0, 2]) {
    it(`every case, ${workers ? 'in a worker pool' : 'on the main thread'}`, async () => {
      const log = new BadSampleLog({ policy: 'skip' });
      const out = await read(log, workers);
      expect(out.map((s) => s.key).sort()).toEqual(['good-a', 'good-b', 'good-c', 'good-d', 'good-e', 'good-f', 'good-g', 'good-h']);
      const rows = log.rows().map((r) => ({ at: `${basename(r.url)} ${r.key}`, reason: r.reason }));
      const want = expected.map(([shard, key, reason]) => ({ at: `${shard} ${key}`, reason }));
      const byAt = (x: { at: string }, y: { at: string }) => x.at.localeCompare(y.at);
      rows.sort(byAt);
      want.sort(byAt);
      expect(rows.map((r) => r.at)).toEqual(want.map((w) => w.at));
      rows.forEach((r, i) => {
        const reason = want[i].reason;
        if (typeof reason === 'string') expect(r.reason).toBe(reason);
        else expect(r.reason).toMatch(reason);
      });
      expect(log.summary()).toBe(`${expected.length} bad samples (policy skip, max 1000)`);
      const csvPath = join(dir, `bad-${workers}.csv`);
      await log.writeCsv(csvPath);
      const csv = readFileSync(csvPath, 'utf8').trim().split('\n');
      expect(csv).toHaveLength(expected.length + 1);
      expect(csv).toContain(`${join(dir, 'b-labels.tar')},word,".cls label ""cat"" is not a non-negative integer"`);
    });
  }

  it('policy fail stops at the first, and the limit stops a flood', async () => {
    // on the main thread the order is the stream's; a pool may report a damaged shard before the batch ahead of it
    await expect(read(new BadSampleLog({ policy: 'fail' }), 0)).rejects.toThrow(`${join(dir, 'a-images.tar')} (sample zero): empty .png file (0 bytes)`);
    await expect(read(new BadSampleLog({ policy: 'skip', maxBadSamples: 3 }), 0)).rejects.toThrow(
      `${join(dir, 'a-images.tar')} (sample bigjpeg): too many bad samples: 4, more than maxBadSamples=3`,
    );
  });
});
