import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/select.js';
import { loadPurifyConfig } from '../../src/config/load.js';
import { purifyPbe, type PbeState } from '../../src/defenses/pbe.js';
import { buildModel } from '../../src/models/zoo.js';
import { loadCheckpoint } from '../../src/pipeline/checkpoint.js';
import type { FitCheckpointState } from '../../src/pipeline/engine.js';
import { createRng } from '../../src/pipeline/random.js';
import { validatePbeState } from '../../src/pipeline/run-identity.js';
import { ScoreStore, spillFile } from '../../src/pipeline/score-store.js';
import { memoryCorpus, syntheticSquares } from '../helpers/memory-corpus.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'pbe-store-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const refOf = (store: ScoreStore, i: number) => {
  const [a, o] = store.reference(i);
  return Array.from(a.subarray(o, o + store.numClasses));
};

describe('ScoreStore spilled to the run directory', () => {
  const k = 7;
  const n = 10_000; // more than two read-back blocks
  const rng = createRng(3);
  const logits = Float32Array.from({ length: n * k }, () => rng() * 10 - 5);
  const fill = (store: ScoreStore) => {
    for (let i = 0; i < n; i++) store.add(`k${i}`, `u${i}`, logits, i * k, i % 3 === 0 ? undefined : i % k);
    store.add('k5', 'dup', logits, 0, 0); // a duplicate is still refused
  };

  it('holds exactly what the in-memory store holds, read in order or at random, and through a snapshot', () => {
    const dir = tempDir();
    const memory = new ScoreStore(k);
    const spilled = new ScoreStore(k, 16, { dir, above: 100 });
    fill(memory);
    fill(spilled);
    expect(memory.spillPath).toBeUndefined();
    expect(spilled.spillPath).toBe(join(dir, spillFile));
    expect(spilled.size).toBe(n);
    for (let i = 0; i < n; i++) expect(refOf(spilled, i)).toEqual(refOf(memory, i)); // in order (the similarity pass)
    const order = Array.from({ length: 2000 }, () => Math.floor(rng() * n));
    for (const i of order) expect(refOf(spilled, i)).toEqual(refOf(memory, i));
    for (let i = 0; i < n; i += 97) {
      expect(spilled.pseudoLabel(`k${i}`)).toBe(memory.pseudoLabel(`k${i}`));
      expect(spilled.givenLabel(i)).toBe(memory.givenLabel(i));
      spilled.setSimilarity(i, i / n);
      memory.setSimilarity(i, i / n);
    }
    expect(spilled.similarities()).toEqual(memory.similarities());
    const snap = spilled.snapshot(); // writes what the store still buffers
    // the file is the logits in insertion order, float32
    const file = readFileSync(join(dir, spillFile));
    expect(new Float32Array(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength))).toEqual(logits);
    expect(snap.refLogits.length).toBe(0);
    expect(snap.spill?.file).toBe(spillFile);
    spilled.close();
    const back = ScoreStore.fromSnapshot(snap, dir);
    for (let i = 0; i < n; i += 13) expect(refOf(back, i)).toEqual(refOf(memory, i));
    expect(back.similarities()).toEqual(memory.similarities());
    expect(back.keys).toEqual(memory.keys);
    back.close();

    const memorySnap = memory.snapshot(); // an in-memory store's snapshot is unchanged: it carries the logits
    expect(memorySnap.spill).toBeUndefined();
    expect(memorySnap.refLogits).toEqual(logits);

    const bytes = readFileSync(join(dir, spillFile));
    bytes[40] ^= 1;
    writeFileSync(join(dir, spillFile), bytes);
    expect(() => ScoreStore.fromSnapshot(snap, dir)).toThrow(/spill file does not match the checkpoint/);
    expect(() => ScoreStore.fromSnapshot(snap, tempDir())).toThrow(/spill file cannot be opened/);
  });
});

/** PBE with its score store spilled after 50 samples gives the run the in-memory store gives, weight for weight. */
describe('purify with a spilled score store', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('scores, trusts and trains exactly as with the store in memory, and its checkpoint resumes the store', async () => {
    const corpus = memoryCorpus(syntheticSquares(400, 5));
    const run = async (spillAbove: number) => {
      const model = buildModel('cnn-small', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
      const config = await loadPurifyConfig({
        overrides: {
          initialFraction: 0.3,
          keepRatio: [0.5],
          inversion: { enabled: false },
          pgd: { eps: 0.05, steps: 2 },
          optimizer: { lr: 0.01 },
          probe: { samples: 32 },
          batchSize: 32,
          rounds: [
            { epochs: 1, adversarial: { epochs: 1, share: 1, maxBatches: 2 } },
            { epochs: 1, adversarial: { epochs: 1, share: 1, maxBatches: 2 } },
          ],
          scoreStore: { spillAbove },
        },
      });
      const dir = tempDir();
      const logs: string[] = [];
      const result = await purifyPbe(model, corpus, { config, log: (m) => logs.push(m), checkpoint: { dir } });
      const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.dispose();
      return { result, weights, dir, logs, config };
    };
    const memory = await run(1_000_000);
    const spilled = await run(50);
    expect(memory.logs.some((l) => l.includes('reference logits kept in'))).toBe(false);
    expect(spilled.logs.some((l) => l.includes(`reference logits kept in ${join(spilled.dir, spillFile)}`))).toBe(true);
    expect(spilled.result.store.spillPath).toBe(join(spilled.dir, spillFile));
    expect(spilled.result.store.keys).toEqual(memory.result.store.keys);
    expect(Array.from(spilled.result.store.similarities())).toEqual(Array.from(memory.result.store.similarities()));
    expect([...spilled.result.trusted].sort()).toEqual([...memory.result.trusted].sort());
    expect(spilled.weights).toEqual(memory.weights);

    const checkpoint = await loadCheckpoint<FitCheckpointState<PbeState>>(spilled.dir);
    const state = validatePbeState<FitCheckpointState<PbeState>>(checkpoint.state, spilled.config);
    expect(state.algorithm.store.spill?.file).toBe(spillFile);
    const resumed = ScoreStore.fromSnapshot(state.algorithm.store, spilled.dir);
    const [ref] = [memory.result.store.snapshot().refLogits];
    for (let i = 0; i < resumed.size; i += 7) expect(refOf(resumed, i)).toEqual(Array.from(ref.subarray(i * 10, i * 10 + 10)));
    resumed.close();
    expect(tf.memory().numTensors).toBeLessThan(1000);
  }, 300_000);
});
