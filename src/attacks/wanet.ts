import { z } from 'zod';
import { createRng } from '../pipeline/random.js';
import { checkSize, opt, type Attack, type ImageShape } from './trigger.js';

/**
 * WaNet (Nguyen & Tran, "WaNet – Imperceptible Warping-based Backdoor Attack", ICLR 2021).
 * Threat model: dirty-label; images are resampled through a fixed smooth warping field. As BackdoorBench
 * (attack/wanet.py) builds it: a k x k field of uniform [-1,1] offsets (seeded), scaled so that its mean |.| is 1,
 * upsampled bicubically (align_corners) to H x W; grid = clamp((identity + s·field/H)·rescale, -1, 1) in
 * normalized coordinates; x' = bilinear grid_sample(x, grid) (align_corners, zero padding). Noise mode: a further
 * `crossRatio` x rate share of samples is warped through grid + uniform(-1,1)/H per pixel (seeded by the sample)
 * and keeps its label, so the model learns the exact warp only.
 * The paper controls training: every batch gets a fresh warped subset and fresh noise-mode samples (new grid
 * noise each time). `pbe train --attack wanet` does that (stages/poison-batch.ts; config `"training": "per-batch"`,
 * how the bench trains it); `pbe poison` writes one fixed draw of both into the data.
 *
 * Options (defaults in config/attacks/wanet.json; BackdoorBench: s = 0.5, crossRatio = 2): k = 4, s = 2, gridRescale = 1,
 * crossRatio = 1, seed = 0 (the warping field).
 *
 * Contract: HWC float32 in [0,1] in and out; the image is resampled, every output a convex combination of inputs.
 *
 *   const trigger = triggerFor('wanet', { s: 1 })({ height: 28, width: 28, channels: 1 });
 */
export interface WanetOptions {
  k: number;
  s: number;
  gridRescale: number;
  crossRatio: number;
  seed: number;
}

export const wanet: Attack<WanetOptions> = {
  name: 'wanet',
  paper: 'Nguyen & Tran, WaNet – Imperceptible Warping-based Backdoor Attack, ICLR 2021',
  cleanLabel: false,
  options: z
    .object({ k: opt.int(2, 'an integer >= 2'), s: opt.number(0, 100), gridRescale: opt.number(0, 10), crossRatio: opt.number(0, 100), seed: opt.seed() })
    .strict(),
  build(o, shape) {
    const { height: h, width: w } = shape;
    const rng = createRng(o.seed);
    const coarse = Float32Array.from({ length: 2 * o.k * o.k }, () => rng() * 2 - 1);
    const meanAbs = coarse.reduce((s, v) => s + Math.abs(v), 0) / coarse.length;
    const field = [0, 1].map((d) => bicubicUpsample(coarse.subarray(d * o.k * o.k, (d + 1) * o.k * o.k).map((v) => v / meanAbs), o.k, h, w));
    // grid[(i*w + j)*2 + 0] is the x (column) coordinate, + 1 the y (row) coordinate, both in [-1, 1]
    const grid = new Float32Array(h * w * 2);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const p = i * w + j;
        const ix = w === 1 ? 0 : -1 + (2 * j) / (w - 1);
        const iy = h === 1 ? 0 : -1 + (2 * i) / (h - 1);
        grid[p * 2] = clamp((ix + (o.s * field[0][p]) / h) * o.gridRescale);
        grid[p * 2 + 1] = clamp((iy + (o.s * field[1][p]) / h) * o.gridRescale);
      }
    }
    return {
      attack: 'wanet',
      shape,
      cleanLabel: false,
      noiseRatio: o.crossRatio,
      negativeRatio: 0,
      maxChange: 1,
      apply(pixels) {
        checkSize('wanet', shape, pixels);
        return gridSample(pixels, shape, grid);
      },
      noise(pixels, sampleRng) {
        checkSize('wanet', shape, pixels);
        return gridSample(pixels, shape, grid.map((g) => clamp(g + (sampleRng() * 2 - 1) / h)));
      },
    };
  },
};

const clamp = (v: number) => Math.min(1, Math.max(-1, v));

/** PyTorch's bilinear grid_sample with align_corners=True and zero padding, HWC. */
function gridSample(src: Float32Array, { height: h, width: w, channels }: ImageShape, grid: Float32Array): Float32Array {
  const out = new Float32Array(src.length);
  const at = (y: number, x: number, c: number) => (y >= 0 && y < h && x >= 0 && x < w ? src[(y * w + x) * channels + c] : 0);
  for (let p = 0; p < h * w; p++) {
    const x = ((grid[p * 2] + 1) / 2) * (w - 1);
    const y = ((grid[p * 2 + 1] + 1) / 2) * (h - 1);
    const [x0, y0] = [Math.floor(x), Math.floor(y)];
    const [fx, fy] = [x - x0, y - y0];
    for (let c = 0; c < channels; c++) {
      out[p * channels + c] =
        at(y0, x0, c) * (1 - fx) * (1 - fy) + at(y0, x0 + 1, c) * fx * (1 - fy) + at(y0 + 1, x0, c) * (1 - fx) * fy + at(y0 + 1, x0 + 1, c) * fx * fy;
    }
  }
  return out;
}

/** PyTorch's bicubic interpolation (A = -0.75, align_corners=True, border indices clamped) of a k x k map to h x w. */
function bicubicUpsample(src: Float32Array, k: number, h: number, w: number): Float32Array {
  const cubic = (t: number) => {
    const a = -0.75;
    const x = Math.abs(t);
    return x <= 1 ? ((a + 2) * x - (a + 3)) * x * x + 1 : x < 2 ? ((a * x - 5 * a) * x + 8 * a) * x - 4 * a : 0;
  };
  const taps = (outSize: number) =>
    Array.from({ length: outSize }, (_, o) => {
      const pos = outSize === 1 ? 0 : (o * (k - 1)) / (outSize - 1);
      const base = Math.floor(pos);
      const t = pos - base;
      return [-1, 0, 1, 2].map((d) => ({ index: Math.min(k - 1, Math.max(0, base + d)), weight: cubic(d - t) }));
    });
  const rows = taps(h);
  const cols = taps(w);
  const out = new Float32Array(h * w);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      let v = 0;
      for (const r of rows[i]) for (const c of cols[j]) v += r.weight * c.weight * src[r.index * k + c.index];
      out[i * w + j] = v;
    }
  }
  return out;
}
