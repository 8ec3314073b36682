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

/** Loads a TensorFlow.js LayersModel (model.json + weight files) from local disk: an image classifier of 2 classes or more. */
export async function loadModel(location: string): Promise<tf.LayersModel> {
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
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** Saves a LayersModel as model.json + weights.bin in a directory; each file is written atomically. */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
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
