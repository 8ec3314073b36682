/** A batch of training samples as plain typed arrays: what crosses stage (and thread) boundaries. */
export interface Batch {
  keys: string[];
  /** N*H*W*C pixels in [0,1], NHWC. */
  x: Float32Array;
  /** Training labels (given or pseudo), one per sample. */
  labels: Int32Array;
  shape: [number, number, number, number];
  /** Set by the mix stage: replace this batch by PGD examples before the train step. */
  adversarial: boolean;
  /** Set by the pgd stage on adversarial batches. */
  attack?: AttackStats;
}

/** What PGD did to one batch: how many predictions it flipped away from the label, and to which classes. */
export interface AttackStats {
  flipped: number;
  /** Per class: flipped samples the attacked model now predicts as that class. */
  flippedTo: Int32Array;
}

/** A sample ready for batching: decoded pixels and the label it is trained with. */
export interface LabeledSample {
  key: string;
  pixels: Float32Array;
  height: number;
  width: number;
  channels: number;
  label: number;
}
