import { describe, expect, it } from 'vitest';
import { anomalyIndices, coverMask, neutralise, stamp } from '../../src/adversarial/trigger-inversion.js';
import { chooseGenerators } from '../../src/adversarial/choose.js';
import { flagClass } from '../../src/adversarial/trigger-probe.js';
import { flagSuspicious, otsuThreshold } from '../../src/eval/flag.js';

describe('trigger inversion helpers', () => {
  it('anomaly index: (median - L1) / (1.4826 MAD) for masks below the median, 0 above', () => {
    const l1 = [10, 100, 90, 110, 95, 105, 80, 120, 85, 115];
    const idx = anomalyIndices(l1);
    // median 97.5; deviations sorted: 2.5 2.5 7.5 7.5 12.5 12.5 17.5 17.5 22.5 87.5 -> MAD 12.5
    expect(idx[0]).toBeCloseTo((97.5 - 10) / (1.4826 * 12.5), 6);
    expect(idx[1]).toBe(0);
    expect(idx[6]).toBeCloseTo((97.5 - 80) / (1.4826 * 12.5), 6);
    expect(anomalyIndices([5, 5, 5])).toEqual([0, 0, 0]);
  });

  it('stamp blends the pattern in by the mask; neutralise fills the covered area with the median colour', () => {
    const image = Float32Array.from([0, 0, 0, 0.2, 0.9, 0.4]); // 2x3, 1 channel
    const mask = Float32Array.from([0, 0, 0, 0, 1, 0.5]);
    const stamped = stamp({ mask, pattern: new Float32Array(6).fill(1) }, image, 1);
    [0, 0, 0, 0.2, 1, 0.7].forEach((v, i) => expect(stamped[i]).toBeCloseTo(v, 6));
    const covered = neutralise(Float32Array.from([0, 0, 0, 0, 1, 1]), image, 1);
    [0, 0, 0, 0.2, 0.2, 0.2].forEach((v, i) => expect(covered[i]).toBeCloseTo(v, 6)); // median of 0,0,0,0.2,0.4,0.9 (upper middle)
  });

  it('coverMask keeps the mask pixels near its peak and grows them by one pixel', () => {
    const mask = new Float32Array(25);
    mask[12] = 0.9; // centre of 5x5
    mask[0] = 0.1; // below 0.3 of the peak
    const cover = coverMask(mask, 5, 5);
    const on = [...cover.keys()].filter((i) => cover[i] === 1);
    expect(on).toEqual([6, 7, 8, 11, 12, 13, 16, 17, 18]);
  });
});

describe('choosing generators from the probes', () => {
  const pgd = (concentration: number) => ({ eps: 0.05, flipRate: 0.6, concentration, concentrationClass: 6 });
  const trigger = { trigger: { target: 0, mask: new Float32Array(1), pattern: new Float32Array(1), maskL1: 9, success: 1 } };
  it('a recovered trigger with scattered PGD flips: trigger unlearning alone', () => {
    expect(chooseGenerators(pgd(0.25), trigger).names).toEqual(['trigger-unlearning']);
  });
  it('a recovered trigger with concentrated PGD flips: both', () => {
    expect(chooseGenerators(pgd(0.8), trigger).names).toEqual(['linf-pgd', 'trigger-unlearning']);
  });
  it('no trigger: PBE as published; a backdoor signal only when PGD flips concentrate', () => {
    expect(chooseGenerators(pgd(0.7), { trigger: null })).toMatchObject({ names: ['linf-pgd'], backdoorSignal: true });
    const quiet = chooseGenerators(pgd(0.3), { trigger: null });
    expect(quiet).toMatchObject({ names: ['linf-pgd'], backdoorSignal: false });
    expect(quiet.reason).toMatch(/no backdoor signal/);
    expect(chooseGenerators(pgd(0.3), trigger).backdoorSignal).toBe(true);
  });
});

describe('the run flag: Otsu on the chord distance', () => {
  it('splits two modes where the gap is, without knowing their sizes', () => {
    const clean = Array.from({ length: 900 }, (_, i) => 0.01 + 0.04 * ((i * 37) % 100) / 100);
    const poisoned = Array.from({ length: 100 }, (_, i) => 0.4 + 0.4 * ((i * 13) % 100) / 100);
    const flag = flagSuspicious([...clean, ...poisoned]);
    expect(flag.count).toBe(100);
    expect(Array.from(flag.flagged.slice(0, 900)).every((f) => f === 0)).toBe(true);
    expect(flag.threshold).toBeGreaterThan(0.05);
    expect(flag.threshold).toBeLessThanOrEqual(0.4);
  });
  it('otsuThreshold of a constant is that constant (nothing above it)', () => {
    expect(otsuThreshold([0.2, 0.2, 0.2])).toBe(0.2);
    expect(flagSuspicious([0.1, 0.1]).count).toBe(0);
  });
});

describe('which class trigger inversion flags', () => {
  const opts = { anomalyThreshold: 2, minGap: 1.6, jointAnomalyThreshold: 1.5, jointMinGap: 1.3, minSuccess: 0.8 };
  const classes = (l1: number[], success = 0.95) => {
    const anomaly = anomalyIndices(l1);
    return l1.map((maskL1, target) => ({ target, maskL1, success, anomaly: anomaly[target] }));
  };
  it('mask sizes measured on Fashion-MNIST cnn-small (50 steps): clean not flagged, a Blend with a pattern image flagged by the gap', () => {
    const clean = flagClass(classes([84.4, 127.1, 89.7, 119.3, 106.6, 106.6, 65.5, 171.6, 58.2, 95.8]), opts);
    expect(clean.flagged).toBeUndefined();
    expect(clean.reason).toMatch(/no class's trigger is an outlier/);
    const rings = flagClass(classes([88.3, 119.7, 87.2, 21.4, 119.8, 134.6, 79.7, 184.2, 65.0, 139.9]), opts);
    expect(rings.flagged?.target).toBe(3);
  });
  it('a Trojan watermark, moderate on both measures, is flagged; a clean model moderate on one is not', () => {
    const trojan = flagClass(classes([50.5, 111.6, 116.9, 110.3, 110.4, 145.9, 72.5, 183.3, 74.6, 122.6]), opts);
    expect(trojan.flagged?.target).toBe(0);
    expect(trojan.reason).toMatch(/anomaly index 1\.76 .* 1\.44x smaller/);
    // the measured clean model: its smallest mask (class 8) past the joint anomaly bar, not past the joint gap
    const clean = classes([84.4, 127.1, 89.7, 119.3, 106.6, 106.6, 65.5, 171.6, 58.2, 95.8]);
    expect(clean[8].anomaly).toBeGreaterThan(1.5);
    expect(flagClass(clean, opts).flagged).toBeUndefined();
  });
  it('a class tied with the flagged one and anomalous on its own is unlearned too (label-consistent, measured)', () => {
    // lc on 20k Fashion-MNIST: the target 0 and class 8 (bags, a small natural mask) tie at 60.5 pixels
    const lc = classes([60.54, 126.0, 119.4, 112.0, 119.7, 131.6, 73.6, 163.8, 60.5, 110.8]);
    const found = flagClass(lc, { ...opts, tieRatio: 1.1 });
    expect(found.flagged?.target).toBe(8);
    expect(found.tied.map((c) => c.target)).toEqual([0]);
    expect(found.reason).toMatch(/class 0 ties with it/);
    expect(flagClass(lc, opts).tied).toEqual([]);
    // BadNets: the runner-up (class 6, 68.2) is nearly twice the flagged mask, so nothing ties
    expect(flagClass(classes([36.3, 105.9, 110.1, 117.3, 106.8, 136.6, 68.2, 175.3, 75.6, 118.1]), { ...opts, tieRatio: 1.1 }).tied).toEqual([]);
  });
  it('an outlier by the anomaly index alone is flagged; a weak trigger is not', () => {
    expect(flagClass(classes([40, 60, 100, 110, 120, 130, 125, 115, 105, 95]), opts).flagged?.target).toBe(0);
    expect(flagClass(classes([10, 100, 90, 110, 95, 105, 80, 120, 85, 115], 0.5), opts).flagged).toBeUndefined();
  });
});
