import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadSampleLog, badSampleError, isBadSampleError } from '../../src/sources/bad-samples.js';
import { tmpDir } from './fixtures.js';

const bad = (i: number) => badSampleError({ url: 's.tar', key: `k${i}` }, `reason ${i}, with "quotes"`);

describe('badSampleError', () => {
  it('names url and key in its message and carries them', () => {
    const err = bad(1);
    expect(err.message).toBe('s.tar (sample k1): reason 1, with "quotes"');
    expect(err.code).toBe('input');
    expect(err.where).toEqual({ url: 's.tar', key: 'k1' });
    expect(isBadSampleError(err)).toBe(true);
    expect(isBadSampleError(new Error('x'))).toBe(false);
  });
});

describe('BadSampleLog', () => {
  it('counts and lists a bad sample once, however many passes over the data meet it', () => {
    const log = new BadSampleLog({ policy: 'skip', maxBadSamples: 5 });
    for (let epoch = 0; epoch < 5; epoch++) {
      log.record(bad(1));
      log.record(bad(2));
    }
    expect(log.count).toBe(2);
    expect(log.rows().map((r) => r.key)).toEqual(['k1', 'k2']);
    log.record(badSampleError({ url: 's.tar', key: 'k1' }, 'another reason'));
    expect(log.count).toBe(3);
  });

  it('skips and counts under "skip" until more than maxBadSamples', () => {
    const messages: string[] = [];
    const log = new BadSampleLog({ policy: 'skip', maxBadSamples: 2, log: (m) => messages.push(m) });
    log.record(bad(1));
    log.handler(bad(2));
    expect(log.count).toBe(2);
    expect(messages).toEqual(['skipped bad sample: s.tar (sample k1): reason 1, with "quotes"', 'skipped bad sample: s.tar (sample k2): reason 2, with "quotes"']);
    expect(() => log.record(bad(3))).toThrow('s.tar (sample k3): too many bad samples: 3, more than maxBadSamples=2 (this one: reason 3, with "quotes")');
    expect(log.summary()).toBe('3 bad samples (policy skip, max 2)');
  });

  it('rethrows the first bad sample under "fail" (the default), and keeps its row', () => {
    const log = new BadSampleLog();
    const err = bad(1);
    expect(() => log.record(err)).toThrow(err);
    expect(log.rows()).toEqual([{ url: 's.tar', key: 'k1', reason: 'reason 1, with "quotes"' }]);
  });

  it('writes url,key,reason rows as CSV, atomically, header only when none', async () => {
    const dir = tmpDir();
    const log = new BadSampleLog({ policy: 'skip' });
    await log.writeCsv(join(dir, 'none.csv'));
    expect(readFileSync(join(dir, 'none.csv'), 'utf8')).toBe('url,key,reason\n');
    log.record(bad(1));
    log.record(new Error('no location'));
    await log.writeCsv(join(dir, 'bad-samples.csv'));
    expect(readFileSync(join(dir, 'bad-samples.csv'), 'utf8')).toBe('url,key,reason\ns.tar,k1,"reason 1, with ""quotes"""\n,,no location\n');
  });

  it('validates its options by name', () => {
    expect(() => new BadSampleLog({ policy: 'ignore' as 'skip' })).toThrow('BadSampleLog: options.policy is expected to be "skip" or "fail", but got "ignore"');
    expect(() => new BadSampleLog({ maxBadSamples: -1 })).toThrow('options.maxBadSamples is expected to be a non-negative integer or Infinity, but got -1');
  });
});
