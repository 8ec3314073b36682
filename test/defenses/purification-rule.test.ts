import { describe, expect, it } from 'vitest';
import { purificationRule } from '../../src/defenses/pbe.js';

describe('the data purification a PBE run uses', () => {
  it('auto: softmax within predicted classes when a probe saw a backdoor, the authors\' logits over all data when none did', () => {
    const auto = { similarity: 'auto', keepWithin: 'auto' } as const;
    expect(purificationRule(auto, true)).toEqual({ similarity: 'softmax', keepWithin: 'predicted-class' });
    expect(purificationRule(auto, false)).toEqual({ similarity: 'logits', keepWithin: 'all' });
  });
  it('a field that is set is used whatever the probes saw', () => {
    expect(purificationRule({ similarity: 'logits', keepWithin: 'auto' }, true)).toEqual({ similarity: 'logits', keepWithin: 'predicted-class' });
    expect(purificationRule({ similarity: 'softmax', keepWithin: 'predicted-class' }, false)).toEqual({ similarity: 'softmax', keepWithin: 'predicted-class' });
  });
});
