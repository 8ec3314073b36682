import { z } from 'zod';
import { attackOptionError } from '../errors.js';
import { checkSize, opt, type Attack, type ImageShape } from './trigger.js';

/**
 * FTrojan (Wang et al., "An Invisible Black-box Backdoor Attack through Frequency Domain", ECCV 2022).
 * Threat model: dirty-label; the trigger lives in the frequency domain: the image (RGB converted to YCrCb) is cut
 * into window x window blocks, each block's orthonormal 2-D DCT-II gets `magnitude`/255 added at fixed
 * frequencies in the chosen channels, and the inverse DCT (and YCrCb → RGB) gives the poisoned image
 * (BackdoorBench, utils/bd_img_transform/ftrojann.py; cv2's DCT and YCrCb conversion).
 *
 * Options (defaults in config/attacks/ftrojan.json, BackdoorBench's but window):
 *  - magnitude = 30: added to each chosen coefficient, in 8-bit levels;
 *  - window = 7: block side; null is the whole image (BackdoorBench: 32 on 32x32 images; on 28x28 Fashion-MNIST the
 *    whole image gave 5.5% ASR, 7 gave 97.8%);
 *  - frequencies = "auto": [[row, col], ...] inside a block; auto is a mid and the highest frequency,
 *    [[b/2-1, b/2-1], [b-1, b-1]] (BackdoorBench on 32 px: [[15, 15], [31, 31]]);
 *  - channels = "auto": channel indices; auto is [1, 2] (Cr, Cb) with yuv on RGB, [0] on grayscale;
 *  - yuv = true: work in YCrCb (RGB images only).
 *
 * Contract: HWC float32 in [0,1] in and out (clamped after the inverse transform).
 *
 *   const trigger = triggerFor('ftrojan', { magnitude: 50 })({ height: 28, width: 28, channels: 1 });
 */
export interface FtrojanOptions {
  magnitude: number;
  window: number | null;
  frequencies: [number, number][] | 'auto';
  channels: number[] | 'auto';
  yuv: boolean;
}

const index = opt.int(0, 'a non-negative integer');

export const ftrojan: Attack<FtrojanOptions> = {
  name: 'ftrojan',
  paper: 'Wang et al., An Invisible Black-box Backdoor Attack through Frequency Domain, ECCV 2022',
  cleanLabel: false,
  options: z
    .object({
      magnitude: opt.number(-255, 255),
      window: opt.int(1, 'a positive integer or null').nullable(),
      frequencies: z.union([z.literal('auto'), z.array(z.tuple([index, index]), { error: '"auto" or [[row, col], ...]' }).min(1)], { error: '"auto" or [[row, col], ...]' }),
      channels: z.union([z.literal('auto'), z.array(index).min(1)], { error: '"auto" or [channel, ...]' }),
      yuv: opt.bool(),
    })
    .strict(),
  build(o, shape) {
    const { height: h, width: w, channels } = shape;
    const bh = Math.min(o.window ?? h, h);
    const bw = Math.min(o.window ?? w, w);
    const freqs = o.frequencies === 'auto' ? [[Math.floor(bh / 2) - 1, Math.floor(bw / 2) - 1], [bh - 1, bw - 1]] : o.frequencies;
    for (const [r, c] of freqs) if (r >= bh || c >= bw) throw optionRange('frequencies', `row < ${bh} and col < ${bw}`, [r, c]);
    const yuv = o.yuv && channels === 3;
    const chans = o.channels === 'auto' ? (yuv ? [1, 2] : [0]) : o.channels;
    for (const c of chans) if (c >= channels) throw optionRange('channels', `channel indices below ${channels}`, c);
    return {
      attack: 'ftrojan',
      shape,
      cleanLabel: false,
      noiseRatio: 0,
      negativeRatio: 0,
      // each coefficient moves a pixel by at most magnitude·2/sqrt(block size); YCrCb → RGB multiplies by up to 1.773 per channel
      maxChange: ((freqs.length * Math.abs(o.magnitude)) / 255) * (2 / Math.sqrt(bh * bw)) * (yuv ? 1.773 * chans.length : 1),
      apply(pixels) {
        checkSize('ftrojan', shape, pixels);
        const planes = toPlanes(pixels, shape, yuv);
        for (const c of chans) {
          for (let y0 = 0; y0 < h; y0 += bh) {
            for (let x0 = 0; x0 < w; x0 += bw) {
              const [n, m] = [Math.min(bh, h - y0), Math.min(bw, w - x0)];
              const block = dct2(planes[c], w, y0, x0, n, m, false);
              for (const [r, col] of freqs) if (r < n && col < m) block[r * m + col] += o.magnitude / 255;
              const back = dct2(block, m, 0, 0, n, m, true);
              for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) planes[c][(y0 + i) * w + x0 + j] = back[i * m + j];
            }
          }
        }
        return fromPlanes(planes, shape, yuv);
      },
    };
  },
};

const optionRange = (name: string, expected: string, actual: unknown) => attackOptionError(`ftrojan.${name}`, expected, actual);

/** Orthonormal 2-D DCT-II (or its inverse) of the n x m block at (y0, x0) of a plane `stride` wide. */
function dct2(plane: Float32Array, stride: number, y0: number, x0: number, n: number, m: number, inverse: boolean): Float32Array {
  const basis = (size: number) => {
    const b = new Float64Array(size * size); // b[k*size + x] = c_k cos(π(2x+1)k / 2size)
    for (let k = 0; k < size; k++) for (let x = 0; x < size; x++) b[k * size + x] = Math.sqrt((k === 0 ? 1 : 2) / size) * Math.cos((Math.PI * (2 * x + 1) * k) / (2 * size));
    return b;
  };
  const [bn, bm] = [basis(n), basis(m)];
  const tmp = new Float64Array(n * m);
  const out = new Float32Array(n * m);
  // forward: X = Bn · x · Bmᵀ; inverse: x = Bnᵀ · X · Bm
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let q = 0; q < m; q++) s += plane[(y0 + i) * stride + x0 + q] * (inverse ? bm[q * m + j] : bm[j * m + q]);
      tmp[i * m + j] = s;
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let p = 0; p < n; p++) s += (inverse ? bn[p * n + i] : bn[i * n + p]) * tmp[p * m + j];
      out[i * m + j] = s;
    }
  }
  return out;
}

/** HWC pixels as one plane per channel; RGB becomes YCrCb (cv2's conversion, values in [0,1], offset 0.5). */
function toPlanes(pixels: Float32Array, { height, width, channels }: ImageShape, yuv: boolean): Float32Array[] {
  const n = height * width;
  const planes = Array.from({ length: channels }, (_, c) => Float32Array.from({ length: n }, (_, p) => pixels[p * channels + c]));
  if (!yuv) return planes;
  const [r, g, b] = planes;
  for (let p = 0; p < n; p++) {
    const y = 0.299 * r[p] + 0.587 * g[p] + 0.114 * b[p];
    const cr = (r[p] - y) * 0.713 + 0.5;
    const cb = (b[p] - y) * 0.564 + 0.5;
    [planes[0][p], planes[1][p], planes[2][p]] = [y, cr, cb];
  }
  return planes;
}

function fromPlanes(planes: Float32Array[], { height, width, channels }: ImageShape, yuv: boolean): Float32Array {
  const n = height * width;
  const out = new Float32Array(n * channels);
  for (let p = 0; p < n; p++) {
    let values = planes.map((plane) => plane[p]);
    if (yuv) {
      const [y, cr, cb] = values;
      values = [y + 1.403 * (cr - 0.5), y - 0.714 * (cr - 0.5) - 0.344 * (cb - 0.5), y + 1.773 * (cb - 0.5)];
    }
    for (let c = 0; c < channels; c++) out[p * channels + c] = Math.min(1, Math.max(0, values[c]));
  }
  return out;
}
