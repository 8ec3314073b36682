import { expect, it } from 'vitest';
import * as pbe from '../src/index.js';

it('the library API offers what the CLI composes', () => {
  for (const name of ['purify', 'shardCorpus', 'loadModel', 'saveModel', 'initBackend', 'loadPurifyConfig', 'triggerFor', 'getAttack', 'attackSettings', 'parseAttackOptions', 'poisonSamples', 'evaluate', 'inspectModel']) {
    expect(typeof (pbe as Record<string, unknown>)[name], name).toBe('function');
  }
  expect(pbe.attackNames).toEqual(['badnets', 'blend', 'trojan', 'sig', 'wanet', 'lc', 'bpp', 'ftrojan']);
});
