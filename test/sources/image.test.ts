import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { convertChannels, decodeImage, encodePng, pngSize } from '../../src/sources/image.js';
import { testImage } from './fixtures.js';

const where = { url: 'mem://x.tar', key: 'k1' };

describe('encodePng / decodeImage', () => {
  it('round-trips grayscale as a 1-channel PNG, exactly on the 8-bit grid', () => {
    const pixels = testImage(5, 7, 1);
    const png = encodePng(pixels, 5, 7, 1);
    expect(PNG.sync.read(Buffer.from(png)).color).toBe(false);
    const img = decodeImage(png, 'png', where);
    expect([img.height, img.width, img.channels]).toEqual([5, 7, 1]);
    expect(Array.from(img.pixels)).toEqual(Array.from(pixels));
  });

  it('round-trips RGB, rounding to within 1/510', () => {
    const pixels = Float32Array.from({ length: 4 * 3 * 3 }, (_, i) => ((i * 0.37) % 1));
    const img = decodeImage(encodePng(pixels, 4, 3, 3), 'PNG', where);
    expect([img.height, img.width, img.channels]).toEqual([4, 3, 3]);
    img.pixels.forEach((v, i) => expect(Math.abs(v - pixels[i])).toBeLessThanOrEqual(0.5 / 255 + 1e-6));
  });

  it('clamps out-of-range values and maps NaN to 0', () => {
    const img = decodeImage(encodePng(Float32Array.from([-1, 2, NaN, 0.5]), 2, 2, 1), 'png', where);
    expect(Array.from(img.pixels)).toEqual([0, 1, 0, Math.fround(128 / 255)]);
  });

  it('drops alpha: RGBA gives 3 channels, gray+alpha gives 1', () => {
    const rgba = new PNG({ width: 1, height: 2 });
    rgba.data = Buffer.from([255, 0, 0, 10, 0, 255, 0, 255]);
    const img = decodeImage(PNG.sync.write(rgba), 'png', where);
    expect(img.channels).toBe(3);
    expect(Array.from(img.pixels)).toEqual([1, 0, 0, 0, 1, 0]);
    const ga = new PNG({ width: 1, height: 1, colorType: 4 });
    ga.data = Buffer.from([51, 51, 51, 0]);
    const gray = decodeImage(PNG.sync.write(ga, { colorType: 4 }), 'png', where);
    expect([gray.channels, gray.pixels[0]]).toEqual([1, Math.fround(0.2)]);
  });

  it('names the url and key of bytes that are not an image it can decode', () => {
    expect(() => decodeImage(new Uint8Array(0), 'png', where)).toThrow('mem://x.tar (sample k1): empty .png file (0 bytes)');
    expect(() => decodeImage(Buffer.from('not a png at all, really not'), 'png', where)).toThrow('mem://x.tar (sample k1): not a PNG image');
    const cut = encodePng(testImage(8, 8, 3), 8, 8, 3).subarray(0, 40);
    expect(() => decodeImage(cut, 'png', where)).toThrow('mem://x.tar (sample k1): corrupt PNG');
    expect(() => decodeImage(Buffer.from([0xff, 0xd8, 0xff]), 'jpg', where)).toThrow('decodeImage(): .jpg images decode asynchronously; use decodeImageAsync()');
    expect(() => decodeImage(Buffer.from('x'), 'bmp', where)).toThrow('unsupported image format ".bmp"; supported: png, jpg, jpeg, webp');
  });

  it('refuses an image over the pixel limit before decompressing it', () => {
    const png = encodePng(testImage(20, 20, 1), 20, 20, 1);
    expect(pngSize(png)).toEqual({ width: 20, height: 20 });
    expect(() => decodeImage(png, 'png', where, { maxPixels: 399 })).toThrow('PNG of 20x20 pixels is over the limit of 399 pixels (maxPixels)');
    // a forged header claiming 100000x100000 is refused from the header alone
    const forged = Uint8Array.from(png);
    new DataView(forged.buffer).setUint32(16, 100_000);
    new DataView(forged.buffer).setUint32(20, 100_000);
    expect(() => decodeImage(forged, 'png', where)).toThrow('PNG of 100000x100000 pixels is over the limit');
  });

  it('checks its arguments when encoding', () => {
    expect(() => encodePng(new Float32Array(8), 2, 2, 2)).toThrow('encodePng(): channels is expected to be 1 or 3, but got 2');
    expect(() => encodePng(new Float32Array(5), 2, 2, 1)).toThrow('5 values do not make a 2x2x1 image');
  });
});

describe('convertChannels', () => {
  it('replicates gray to RGB and takes luma from RGB', () => {
    const gray = { pixels: Float32Array.from([0.25, 1]), height: 1, width: 2, channels: 1 };
    expect(Array.from(convertChannels(gray, 3).pixels)).toEqual([0.25, 0.25, 0.25, 1, 1, 1]);
    const rgb = { pixels: Float32Array.from([1, 0, 0, 0.5, 0.5, 0.5]), height: 1, width: 2, channels: 3 };
    const back = convertChannels(rgb, 1);
    expect(back.channels).toBe(1);
    expect(back.pixels[0]).toBeCloseTo(0.299, 6);
    expect(back.pixels[1]).toBeCloseTo(0.5, 6);
    expect(convertChannels(gray, 1)).toBe(gray);
  });
});
