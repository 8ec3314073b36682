/** A WebDataset sample before decoding: every file of a shard that shares one key, by extension. */
export interface RawSample {
  key: string;
  url: string;
  files: Map<string, Uint8Array>;
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
}

/** A restartable source: each call starts the stream again (one call per epoch or pass). */
export type SampleSource = () => AsyncIterable<Sample>;

/** The shape of one image, HWC. */
export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}
