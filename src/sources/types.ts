/** A WebDataset sample before decoding: every file of a shard that shares one key, by extension. */
export interface RawSample {
  key: string;
  url: string;
  files: Map<string, Uint8Array>;
  /** A record shard's pixels, already an array (msgpack): used instead of an image file. */
  array?: RawArray;
  /** Set by a reader that found this sample bad (a duplicate key, an entry over the size limit): decode reports it. */
  error?: string;
}

/** Pixels as stored in a record shard: HWC, uint8 (0..255) or float32 ([0,1]). */
export interface RawArray {
  shape: number[];
  dtype: 'uint8' | 'float32';
  data: Uint8Array;
}

/** A decoded sample: pixels HWC float32 in [0,1]. */
export interface Sample {
  key: string;
  url: string;
  pixels: Float32Array;
  height: number;
  width: number;
  channels: number;
  label?: number;
  /** The sample's `.json` file, parsed. */
  meta?: unknown;
}

/** A restartable source: each call starts the stream again (one call per epoch or pass). */
export type SampleSource = () => AsyncIterable<Sample>;

/** The shape of one image, HWC. */
export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}
