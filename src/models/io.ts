import * as tf from '@tensorflow/tfjs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { z } from 'zod';
import { modelError } from '../errors.js';
import { writeFileAtomic } from '../pipeline/atomic-write.js';
import { registerDilationAwareConv2D } from './dilated-conv2d.js';
import { checkTrainable } from './layer-check.js';

/** Resolves a model location (a directory holding model.json, or the model.json itself) to its model.json path. */
async function modelJsonPath(location: string): Promise<string> {
  let info;
  try {
    info = await stat(location);
  } catch (err) {
    throw modelError(location, 'no such model file or directory (expected a TensorFlow.js model.json or its directory)', err);
  }
  return info.isDirectory() ? join(location, 'model.json') : location;
}

const weightsEntry = z.object({ name: z.string(), shape: z.array(z.number().int().nonnegative()), dtype: z.string() }).loose();
const modelJsonSchema = z.object({
  format: z.string().optional(),
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z.array(z.object({ paths: z.array(z.string().min(1)), weights: z.array(weightsEntry) })),
});
type ModelJson = z.infer<typeof modelJsonSchema>;

/** model.json, validated: its topology is an object and every weight group lists its files and weights. */
async function readModelJson(jsonPath: string): Promise<ModelJson> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (err) {
    throw modelError(jsonPath, `cannot read model.json: ${(err as Error).message}`, err);
  }
  if ((json as { format?: unknown } | null)?.format === 'graph-model') {
    throw modelError(jsonPath, 'is a TensorFlow.js graph model, which cannot be trained; convert the Keras model to a LayersModel (tensorflowjs_converter --input_format=keras)');
  }
  const parsed = modelJsonSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.map(String).join('.') || 'the top level';
    throw modelError(jsonPath, `not a TensorFlow.js LayersModel: ${at} is invalid (${issue.message})`);
  }
  return parsed.data;
}

/**
 * A weight file named by model.json, resolved inside the model's directory: a path that is absolute, a URL, or
 * climbs out with `..` is refused (a model from elsewhere must not read other files of this machine).
 */
function weightFile(jsonPath: string, name: string): string {
  const dir = resolve(dirname(jsonPath));
  const file = resolve(dir, name);
  if (isAbsolute(name) || /^[a-z][a-z0-9+.-]+:/i.test(name) || (file !== dir && !file.startsWith(dir + sep))) {
    throw modelError(jsonPath, `weight path ${JSON.stringify(name)} is outside the model's directory; weight files must sit beside model.json`);
  }
  return file;
}

/** The files a model is made of: model.json and its weight files (for a run's fingerprint). */
export async function modelFiles(location: string): Promise<string[]> {
  const jsonPath = await modelJsonPath(location);
  const json = await readModelJson(jsonPath);
  return [jsonPath, ...json.weightsManifest.flatMap((g) => g.paths.map((p) => weightFile(jsonPath, p)))];
}

type LayerJson = { class_name?: string; config?: Record<string, unknown> & { layers?: unknown; output_layers?: unknown; name?: string }; name?: string };

/** The layer(s) a model config outputs from: Sequential's last, a functional model's output_layers; into nested models. */
function outputLayerJsons(model: LayerJson): LayerJson[] {
  const cls = model.class_name;
  const config = model.config as unknown;
  if (cls === 'Sequential') {
    const layers = (Array.isArray(config) ? config : (config as { layers?: unknown })?.layers) as LayerJson[] | undefined;
    const last = layers?.[layers.length - 1];
    return last ? expand(last) : [];
  }
  const c = config as { layers?: LayerJson[]; output_layers?: unknown } | undefined;
  if (!Array.isArray(c?.layers) || !Array.isArray(c.output_layers)) return [];
  const outputs = (c.output_layers.length > 0 && !Array.isArray(c.output_layers[0]) ? [c.output_layers] : c.output_layers) as unknown[][];
  return outputs.flatMap(([name]) => {
    const layer = c.layers!.find((l) => (l.config?.name ?? l.name) === name);
    return layer ? expand(layer) : [];
  });
}

function expand(layer: LayerJson): LayerJson[] {
  return ['Sequential', 'Functional', 'Model'].includes(layer.class_name ?? '') ? outputLayerJsons(layer) : [layer];
}

const isSoftmax = (activation: unknown) => activation === 'softmax' || (activation as { class_name?: unknown } | null)?.class_name === 'softmax';

/** What was changed at load to turn a softmax output into logits (put back when the model is saved). */
interface StrippedSoftmax {
  name: string;
  className: string;
  config: Record<string, unknown>;
}
const strippedSoftmax = new WeakMap<tf.LayersModel, StrippedSoftmax[]>();

/**
 * Makes a model whose output layer ends in softmax output logits: a layer with `activation: softmax` gets a linear
 * activation, a `Softmax` layer becomes a linear `Activation`. Softmax is monotone, so predictions are unchanged;
 * pbe's losses (softmax cross-entropy) and similarities need the logits. Changes `topology` in place.
 */
function stripOutputSoftmax(topology: Record<string, unknown>): StrippedSoftmax[] {
  const model = ((topology.model_config as LayerJson | undefined) ?? topology) as LayerJson;
  const stripped: StrippedSoftmax[] = [];
  for (const layer of outputLayerJsons(model)) {
    const config = layer.config;
    if (config === undefined) continue;
    const name = String(config.name ?? layer.name ?? '?');
    const before = { name, className: layer.class_name ?? '?', config: structuredClone(config) };
    if (layer.class_name === 'Softmax') {
      layer.class_name = 'Activation';
      const { axis: _axis, ...rest } = config; // the Softmax layer's own field; name, trainable, dtype stay
      layer.config = { ...rest, activation: 'linear' };
      stripped.push(before);
    } else if (isSoftmax(config.activation)) {
      config.activation = 'linear';
      stripped.push(before);
    }
  }
  return stripped;
}

/** Puts the softmax a loaded model's output had back into its saved topology, so the saved model outputs what the given one did. */
function restoreOutputSoftmax(topology: Record<string, unknown>, stripped: StrippedSoftmax[]): void {
  const model = ((topology.model_config as LayerJson | undefined) ?? topology) as LayerJson;
  for (const layer of outputLayerJsons(model)) {
    const original = stripped.find((s) => s.name === (layer.config?.name ?? layer.name));
    if (original === undefined) continue;
    layer.class_name = original.className;
    layer.config = structuredClone(original.config);
  }
}

/**
 * Refuses a model whose outputs are probabilities (every row non-negative and summing to 1 on random inputs)
 * that the topology check did not catch, e.g. a softmax before a pooling layer.
 */
function checkLogits(model: tf.LayersModel, jsonPath: string): void {
  const shape = model.inputs[0].shape;
  if (shape.slice(1).some((d) => d === null)) return;
  const rows = tf.tidy(() => {
    const x = tf.randomUniform([2, ...(shape.slice(1) as number[])], 0, 1, 'float32', 7);
    const y = model.predict(x) as tf.Tensor;
    return y.arraySync() as number[][];
  });
  if (!rows.every((r) => Array.isArray(r))) return;
  const probabilities = rows.every((r) => r.every((v) => v >= 0) && Math.abs(r.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  if (probabilities) {
    throw modelError(
      jsonPath,
      'outputs probabilities (each output row is non-negative and sums to 1), but pbe needs logits (the scores before softmax) and could not find the softmax to remove: give the model without its final softmax',
    );
  }
}

/** Loads a TensorFlow.js LayersModel (model.json + weight files) from local disk: an image classifier of 2 classes or more. */
export async function loadModel(location: string, opts: { log?: (message: string) => void } = {}): Promise<tf.LayersModel> {
  const jsonPath = await modelJsonPath(location);
  const json = await readModelJson(jsonPath);
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...(group.weights as tf.io.WeightsManifestEntry[]));
    for (const p of group.paths) {
      const file = weightFile(jsonPath, p);
      try {
        buffers.push(await readFile(file));
      } catch (err) {
        throw modelError(file, 'weight file listed in model.json is missing or unreadable', err);
      }
    }
  }
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  registerDilationAwareConv2D();
  const stripped = stripOutputSoftmax(json.modelTopology);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology as object, weightSpecs, weightData: weightData.buffer }));
  } catch (err) {
    throw modelError(jsonPath, `cannot build the model: ${(err as Error).message}`, err);
  }
  try {
    checkTrainable(model, jsonPath); // first: a layer pbe cannot train is named, whatever the output
    const out = model.outputs[0].shape;
    const classes = out[out.length - 1];
    if (out.length !== 2 || typeof classes !== 'number' || classes < 2) {
      throw modelError(jsonPath, `expected a classifier with output [batch, classes] of 2 classes or more, got [${out.join(', ')}]`);
    }
    checkLogits(model, jsonPath);
  } catch (err) {
    model.dispose();
    throw err;
  }
  if (stripped.length > 0) {
    strippedSoftmax.set(model, stripped);
    const what = stripped.map((s) => `"${s.name}" (${s.className})`).join(', ');
    opts.log?.(`${jsonPath}: the output layer ${what} ends in softmax; pbe trains and scores on the logits before it (predictions are unchanged) and puts the softmax back in the models it saves`);
  }
  return model;
}

/**
 * Saves a LayersModel as model.json + weights.bin in a directory; each file is written atomically. A model whose
 * output softmax was removed at load is saved with it put back.
 */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  const stripped = strippedSoftmax.get(model);
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (stripped) restoreOutputSoftmax(artifacts.modelTopology as Record<string, unknown>, stripped);
      const weightsFile = 'weights.bin';
      const weightData = artifacts.weightData as ArrayBuffer;
      await writeFileAtomic(join(dir, weightsFile), new Uint8Array(weightData as ArrayBuffer));
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: 'pbe',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs }],
      };
      await writeFileAtomic(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

/** A copy of a model with the same architecture and weights (for the frozen reference model f0). */
export async function cloneModel(model: tf.LayersModel): Promise<tf.LayersModel> {
  let copy: tf.LayersModel | undefined;
  registerDilationAwareConv2D();
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      copy = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return copy!;
}

export function modelInputShape(model: tf.LayersModel, location = 'model'): [number, number, number] {
  const shape = model.inputs[0].shape;
  if (shape.length !== 4 || shape.slice(1).some((d) => d === null)) {
    throw modelError(location, `expected an image model with input [batch, height, width, channels], got [${shape.join(', ')}]`);
  }
  return shape.slice(1) as [number, number, number];
}

export function modelNumClasses(model: tf.LayersModel): number {
  const shape = model.outputs[0].shape;
  return shape[shape.length - 1] as number;
}
