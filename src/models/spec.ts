import * as tf from '@tensorflow/tfjs';

export interface ModelSpec {
  inputShape: [number, number, number];
  numClasses: number;
  /** Seeds the weight initialisers, so the same seed gives the same initial model. */
  seed?: number;
  /** Width multiplier of the models that have one (resnet18: 64/128/256/512 channels times this; mobilenet-v2: alpha). */
  width?: number;
}

/** Kernel initialisers seeded from the spec's seed and the order they are asked for (unseeded without a seed). */
export function seededInit(spec: ModelSpec) {
  let layer = 0;
  const seed = () => (spec.seed === undefined ? {} : { seed: spec.seed * 1000 + layer++ });
  return {
    glorot: () => tf.initializers.glorotUniform(seed()),
    he: () => tf.initializers.heNormal(seed()),
  };
}
