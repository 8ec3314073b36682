import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { Trainer } from '../pipeline/engine.js';
import { convLayers, tapModel } from '../models/layers.js';
import { applyGradients } from '../stages/train.js';
import { modelError } from '../errors.js';
import { describeFineTune, fineTune, fineTuneSchema, givenLabels, loadDefenseConfig, requireClean, runPhases, type Defense, type DefenseContext } from './defense.js';

/**
 * Neural Attention Distillation (Li, Lyu, Koren, Lyu, Li, Ma, "Neural Attention Distillation: Erasing Backdoor
 * Triggers from Deep Neural Networks", ICLR 2021). Setting: clean (the clean extra set, its labels).
 *
 * 1. Teacher: a copy of the infected model fine-tuned on the clean set for `teacherEpochs`.
 * 2. Student (the infected model) trained on the clean set with CE + Σ_l β_l · MSE(A(s_l), A(t_l)), where for
 *    a layer's activations f (N×H×W×C), A(f) = Σ_c |f_c|^p normalised to unit L2 norm over H×W per sample
 *    (BackdoorBench's AT loss), and t_l is the teacher's (inference mode, no gradient).
 *
 * Options (config/defenses/nad.json): teacherEpochs 10, betas [500, 1000, 1000] on the last convolutional layers
 * (the last of them on the last conv layer; a model with fewer conv layers uses the last betas), p 2, and the
 * fine-tuning options (weight decay 1e-4, as NAD's). BackdoorBench's betas are for a ResNet's last three groups.
 *
 * Contract: the student is trained in place; the teacher's weights go into checkpoints once it is trained, so a
 * resumed run (in either phase) ends with the same weights.
 */
const schema = fineTuneSchema.extend({
  teacherEpochs: z.number({ error: 'a positive integer' }).int({ error: 'a positive integer' }).positive({ error: 'a positive integer' }),
  betas: z.array(z.number({ error: 'a non-negative number' }).nonnegative({ error: 'a non-negative number' }), { error: 'an array of numbers' }).min(1, { error: 'an array with at least one number' }),
  p: z.number({ error: 'a positive number' }).positive({ error: 'a positive number' }),
});
type Config = z.infer<typeof schema>;

interface NadState {
  phase: number;
  rows: never[];
  teacher: { shape: number[]; data: Float32Array }[] | null;
}

export const nad: Defense<Config> = {
  name: 'nad',
  title: 'Neural Attention Distillation (Li et al., ICLR 2021)',
  data: 'clean',
  loadConfig: (sources) => loadDefenseConfig('nad', schema, sources),
  async run(model, ctx, config) {
    const teacher = await copyModel(model);
    const state: NadState = { phase: 0, rows: [], teacher: null };
    try {
      const { rows, pipeline } = await runPhases(ctx, state, [
        (run) => fineTune(teacher, teacherSpec(ctx, config), run),
        async (run) => {
          if (state.teacher) setWeights(teacher, state.teacher);
          else state.teacher = teacher.getWeights().map((w) => ({ shape: w.shape, data: w.dataSync() as Float32Array }));
          return fineTune(model, { ...teacherSpec(ctx, config), config, trainer: (optimizer) => distillation(model, teacher, optimizer, config) }, run);
        },
      ]);
      return { rows, pipeline, info: {} };
    } finally {
      teacher.dispose();
    }
  },
  describe: (model, ctx, config) => `teacher: ${describeFineTune(model, teacherSpec(ctx, config))}; student: ${describeFineTune(model, { ...teacherSpec(ctx, config), config, trainer: () => ({ stages: [], step: async () => ({ loss: 0 }), summary: distillSummary(config, model) }) })}`,
};

function teacherSpec(ctx: DefenseContext, config: Config) {
  return { corpus: requireClean(ctx, 'nad'), labels: givenLabels('nad trains on the labels of the clean extra set'), config: { ...config, epochs: config.teacherEpochs }, shuffleBuffer: ctx.shuffleBuffer };
}

function distillSummary(config: Config, model: tf.LayersModel): string {
  const layers = tapped(model, config).map((t) => `${t.layer.name}:${t.beta}`);
  return `train(sgd lr=${config.optimizer.lr}, CE + attention distillation ${layers.join(', ')})`;
}

/** The last conv layers with their betas (the last beta on the last conv layer). */
function tapped(model: tf.LayersModel, config: Config): { layer: tf.layers.Layer; beta: number }[] {
  const convs = convLayers(model);
  if (convs.length === 0) throw modelError(model.name, 'nad needs Conv2D layers, and the model has none');
  const n = Math.min(convs.length, config.betas.length);
  return convs.slice(-n).map((layer, i) => ({ layer, beta: config.betas[config.betas.length - n + i] }));
}

/** A(f): Σ_c |f|^p over channels, L2-normalised over H×W per sample; [N, H·W]. */
function attention(f: tf.Tensor, p: number): tf.Tensor2D {
  const am = f.abs().pow(p).sum(-1);
  const flat = am.reshape([am.shape[0], -1]) as tf.Tensor2D;
  return flat.div(flat.norm('euclidean', 1, true).add(1e-6));
}

function distillation(student: tf.LayersModel, teacher: tf.LayersModel, optimizer: tf.Optimizer, config: Config): Trainer {
  const layers = tapped(student, config);
  const studentTap = tapModel(student, layers.map((t) => t.layer), true);
  const teacherTap = tapModel(teacher, tapped(teacher, config).map((t) => t.layer));
  const numClasses = student.outputs[0].shape[1] as number;
  return {
    stages: [],
    summary: distillSummary(config, student),
    step: async (b) =>
      tf.tidy(() => {
        const x = tf.tensor4d(b.x, b.shape);
        const targets = ([] as tf.Tensor[]).concat(teacherTap.predict(x) as tf.Tensor | tf.Tensor[]).map((t) => attention(t, config.p));
        const y = tf.oneHot(tf.tensor1d(b.labels, 'int32'), numClasses).toFloat();
        const weights = student.trainableWeights.map((w) => w.read() as tf.Variable);
        let ce = 0;
        const { grads } = tf.variableGrads(() => {
          const outputs = studentTap.apply(x, { training: true }) as tf.Tensor[];
          const logits = outputs[outputs.length - 1];
          const cls = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
          ce = cls.dataSync()[0];
          return layers.reduce((loss, t, i) => loss.add(tf.losses.meanSquaredError(targets[i], attention(outputs[i], config.p)).mul(t.beta)), cls as tf.Tensor) as tf.Scalar;
        }, weights);
        applyGradients(student, optimizer, weights.map((w) => grads[w.name]), config.optimizer.weightDecay);
        return { loss: ce };
      }),
  };
}

async function copyModel(model: tf.LayersModel): Promise<tf.LayersModel> {
  const copy = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
  copy.setWeights(model.getWeights());
  return copy;
}

function setWeights(model: tf.LayersModel, weights: { shape: number[]; data: Float32Array }[]): void {
  const tensors = weights.map((w) => tf.tensor(w.data, w.shape));
  model.setWeights(tensors);
  tf.dispose(tensors);
}
