import type * as tf from '@tensorflow/tfjs';

/** One batch as a generator sees it: NHWC pixels in [0,1], the training labels and the samples' keys. */
export interface GeneratorBatch {
  /** The current model (generators that attack it need it). */
  model?: tf.LayersModel;
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  keys: string[];
  /** Seeds any random choice (per epoch in a run). */
  seed: number;
}

/**
 * An adversarial generator: how the samples fine-tuning unlearns the backdoor with are made from a batch (one
 * threat model each). `generate` is the reference for one batch; a run may compute the same elsewhere (PGD on
 * compute workers) and is tested against it.
 */
export interface AdversarialGenerator<O> {
  name: string;
  paper: string;
  describe(opts: O): string;
  generate(batch: GeneratorBatch, opts: O): Float32Array;
}
