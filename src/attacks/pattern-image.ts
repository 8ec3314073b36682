import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { attackOptionError } from '../errors.js';
import { convertChannels, decodeImage, resizeImage } from '../sources/image.js';

/**
 * An image file used as a trigger pattern (Blend's pattern, a BadNets patch image, a Trojan mask), resized to
 * height x width (bilinear) and converted to `channels`. `option` names the option for the error message.
 */
export function loadPatternImage(file: string, height: number, width: number, channels: number, option: string): Float32Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw attackOptionError(option, 'a readable image file (png, jpg, webp)', file, (err as Error).message);
  }
  const image = decodeImage(bytes, extname(file).slice(1).toLowerCase(), { url: file });
  return convertChannels(resizeImage(image, height, width), channels).pixels;
}
