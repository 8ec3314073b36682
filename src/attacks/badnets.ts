import { usageError } from '../errors.js';
import { PatternTrigger, type ImageShape, type TriggerBuilder, type TriggerOptions } from './pattern-trigger.js';

/**
 * BadNets (Gu et al., "BadNets: Identifying Vulnerabilities in the Machine Learning Model Supply Chain", 2017).
 * A white square patch of `patchSize` pixels (default 3) stamped at `patchPosition` (default bottom-right;
 * one of top-left, top-right, bottom-left, bottom-right, or "row,col" of its top-left pixel), w = 1 on the mask.
 *
 *   const trigger = badnets({ patchSize: 3 })({ height: 28, width: 28, channels: 1 });
 *   const poisoned = trigger.apply(pixels);
 */
export function badnets(opts: TriggerOptions): TriggerBuilder {
  const size = opts.patchSize ?? 3;
  if (!Number.isInteger(size) || size < 1) throw usageError(`--patch-size must be a positive integer, got ${size}`);
  const position = opts.patchPosition ?? 'bottom-right';
  return (shape: ImageShape) => {
    const [row, col] = patchOrigin(position, size, shape);
    const mask = new Float32Array(shape.height * shape.width);
    for (let r = row; r < row + size; r++) for (let c = col; c < col + size; c++) mask[r * shape.width + c] = 1;
    const pattern = new Float32Array(shape.height * shape.width * shape.channels).fill(1);
    return new PatternTrigger(shape, mask, 1, pattern);
  };
}

function patchOrigin(position: string, size: number, { height, width }: ImageShape): [number, number] {
  if (size > height || size > width) throw usageError(`--patch-size ${size} does not fit a ${height}x${width} image`);
  const named: Record<string, [number, number]> = {
    'top-left': [0, 0],
    'top-right': [0, width - size],
    'bottom-left': [height - size, 0],
    'bottom-right': [height - size, width - size],
  };
  if (named[position]) return named[position];
  const m = /^(\d+),(\d+)$/.exec(position);
  if (m) {
    const origin: [number, number] = [Number(m[1]), Number(m[2])];
    if (origin[0] + size <= height && origin[1] + size <= width) return origin;
  }
  throw usageError(
    `--patch-position must be top-left, top-right, bottom-left, bottom-right or "row,col" inside the image, got "${position}"`,
  );
}
