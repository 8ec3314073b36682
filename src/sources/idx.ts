import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { inputError } from '../errors.js';

/**
 * IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
 *
 *   const { images, labels, count, height, width } = await readIdxImages('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz');
 *   images.subarray(i * height * width, (i + 1) * height * width)  // image i, row-major uint8
 *
 * Layout: two zero bytes, a type byte, the number of dimensions, each dimension as a big-endian uint32, then
 * the values row-major, big-endian.
 */

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dims: number[];
  data: IdxData;
}

const TYPES: Record<number, { name: string; size: number; alloc: (n: number) => IdxData; get?: (v: DataView, o: number) => number }> = {
  0x08: { name: 'uint8', size: 1, alloc: (n) => new Uint8Array(n) },
  0x09: { name: 'int8', size: 1, alloc: (n) => new Int8Array(n), get: (v, o) => v.getInt8(o) },
  0x0b: { name: 'int16', size: 2, alloc: (n) => new Int16Array(n), get: (v, o) => v.getInt16(o) },
  0x0c: { name: 'int32', size: 4, alloc: (n) => new Int32Array(n), get: (v, o) => v.getInt32(o) },
  0x0d: { name: 'float32', size: 4, alloc: (n) => new Float32Array(n), get: (v, o) => v.getFloat32(o) },
  0x0e: { name: 'float64', size: 8, alloc: (n) => new Float64Array(n), get: (v, o) => v.getFloat64(o) },
};

/** Reads an IDX file; gzip is detected by its magic bytes, whatever the file name. */
export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw inputError({ url: path }, code === 'ENOENT' ? 'no such file' : `cannot read (${(err as Error).message})`, err);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await promisify(gunzip)(bytes);
    } catch (err) {
      throw inputError({ url: path }, `corrupt gzip: ${(err as Error).message}`, err);
    }
  }
  return parseIdx(bytes, path);
}

export function parseIdx(bytes: Uint8Array, url: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw inputError({ url }, 'not an IDX file (bad magic number)');
  const type = TYPES[bytes[2]];
  if (!type) throw inputError({ url }, `not an IDX file (unknown type byte 0x${bytes[2].toString(16)})`);
  const ndims = bytes[3];
  const header = 4 + 4 * ndims;
  if (ndims === 0 || bytes.length < header) throw inputError({ url }, `IDX header is cut short or has ${ndims} dimensions`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = header + count * type.size;
  if (bytes.length !== expected) {
    throw inputError({ url }, `IDX ${type.name} array of shape [${dims.join(', ')}] needs ${expected} bytes, the file has ${bytes.length}${bytes.length < expected ? ' (truncated?)' : ''}`);
  }
  const data = type.alloc(count);
  if (!type.get) (data as Uint8Array).set(bytes.subarray(header, expected));
  else for (let i = 0; i < count; i++) data[i] = type.get(view, header + i * type.size);
  return { dims, data };
}

export interface IdxImages {
  /** count × height × width, row-major uint8. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

/** An image file (uint8 [n, h, w]) with its label file (uint8 [n]); the counts must agree. */
export async function readIdxImages(imagesPath: string, labelsPath: string): Promise<IdxImages> {
  const [images, labels] = await Promise.all([readIdx(imagesPath), readIdx(labelsPath)]);
  if (!(images.data instanceof Uint8Array) || images.dims.length !== 3) {
    throw inputError({ url: imagesPath }, `expected uint8 images of shape [n, height, width], got shape [${images.dims.join(', ')}]`);
  }
  if (!(labels.data instanceof Uint8Array) || labels.dims.length !== 1) {
    throw inputError({ url: labelsPath }, `expected uint8 labels of shape [n], got shape [${labels.dims.join(', ')}]`);
  }
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw inputError({ url: labelsPath }, `${labels.dims[0]} labels for ${count} images in ${imagesPath}`);
  }
  return { images: images.data, labels: labels.data, count, height, width };
}
