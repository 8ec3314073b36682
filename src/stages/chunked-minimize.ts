import * as tf from '@tensorflow/tfjs';

/**
 * One optimizer step on a batch's loss, computed `chunk` samples at a time: the gradient of a mean over the batch
 * is the sum of the chunks' mean gradients weighted by their share of it, so the step is the one-batch step, in
 * the memory of one chunk (a backward pass keeps every intermediate tensor of its images: tens of MiB each at
 * 224x224). `loss(x, y)` is the mean loss over the samples it is given plus any penalty on the variables alone
 * (the shares add up to 1, so the penalty counts once). With chunk >= the batch it is `optimizer.minimize` itself.
 *
 *   minimizeInChunks(adam, [mask], x, y, 4, (xc, yc) => tf.losses.softmaxCrossEntropy(yc, model.apply(xc)).add(penalty()));
 *
 * Ownership: disposes every tensor it creates; x and y stay the caller's.
 */
export function minimizeInChunks(
  optimizer: tf.Optimizer,
  vars: tf.Variable[],
  x: tf.Tensor,
  y: tf.Tensor,
  chunk: number,
  loss: (x: tf.Tensor, y: tf.Tensor) => tf.Scalar,
): void {
  const n = x.shape[0];
  if (chunk >= n) {
    optimizer.minimize(() => loss(x, y), false, vars);
    return;
  }
  let sum: tf.NamedTensorMap = {};
  try {
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const next = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => loss(x.slice(start, m), y.slice(start, m)).mul(m / n) as tf.Scalar, vars);
        value.dispose();
        return Object.fromEntries(Object.entries(grads).map(([name, g]) => [name, sum[name] ? sum[name].add(g) : g.clone()]));
      });
      tf.dispose(sum);
      sum = next;
    }
    optimizer.applyGradients(sum);
  } finally {
    tf.dispose(sum);
  }
}
