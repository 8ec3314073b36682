import { PNG } from 'pngjs';
import { escapeHtml } from './page.js';

/** An image as HWC float32 in [0, 1] (a decoded Sample's layout). */
export interface Pixels {
  pixels: Float32Array;
  height: number;
  width: number;
  channels: number;
}

/** The image as a `data:image/png;base64,…` URL (grey for one channel, RGB for three; values clamped to [0, 1]). */
export function pngDataUrl(image: Pixels): string {
  const { pixels, height, width, channels } = image;
  if (channels !== 1 && channels !== 3) throw new Error(`pngDataUrl: images with 1 or 3 channels are supported, got ${channels}`);
  if (pixels.length !== height * width * channels) throw new Error(`pngDataUrl: ${pixels.length} values for a ${height}x${width}x${channels} image`);
  const png = new PNG({ width, height, colorType: channels === 1 ? 0 : 2, inputColorType: 6, inputHasAlpha: true });
  for (let i = 0; i < height * width; i++) {
    for (let c = 0; c < 3; c++) png.data[4 * i + c] = Math.round(255 * Math.min(1, Math.max(0, pixels[i * channels + (channels === 1 ? 0 : c)])));
    png.data[4 * i + 3] = 255;
  }
  return `data:image/png;base64,${PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2 }).toString('base64')}`;
}

/**
 * |a - b| per pixel (mean over channels) as a grey image scaled so that its largest value is white; returns the
 * image and the scale factor (shown beside it, so that a faint perturbation is not mistaken for a strong one).
 */
export function differenceImage(a: Pixels, b: Pixels): { image: Pixels; scale: number; maxAbs: number } {
  const n = a.height * a.width;
  const diff = new Float32Array(n);
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < a.channels; c++) sum += Math.abs(a.pixels[i * a.channels + c] - b.pixels[i * b.channels + c]);
    diff[i] = sum / a.channels;
    maxAbs = Math.max(maxAbs, diff[i]);
  }
  const scale = maxAbs > 0 ? 1 / maxAbs : 1;
  for (let i = 0; i < n; i++) diff[i] *= scale;
  return { image: { pixels: diff, height: a.height, width: a.width, channels: 1 }, scale, maxAbs };
}

/** One image with its caption lines; `tone` colours the frame (poisoned / clean ground truth). */
export function imageTile(src: string, alt: string, lines: string[], tone?: 'poisoned' | 'clean'): string {
  return `<div class="tile${tone ? ` ${tone}` : ''}"><img src="${src}" alt="${escapeHtml(alt)}">${lines.map((l) => `<div>${l}</div>`).join('')}</div>`;
}
