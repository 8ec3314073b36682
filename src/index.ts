/** pbe as a library: the same pieces the CLI composes. */
export { initBackend, type BackendInfo, type BackendRequest } from './backend/select.js';
export { loadPurifyConfig } from './config/load.js';
export type { PurifyConfig } from './config/schema.js';
export { purifyPbe as purify, type Corpus, type EpochRow, type PurifyOptions, type PurifyResult } from './defenses/pbe.js';
export { shardCorpus } from './pipeline/corpus.js';
export { fitModel } from './pipeline/fit.js';
export { loadModel, saveModel } from './models/io.js';
export { buildModel, modelNames } from './models/zoo.js';
export { triggerFor, attackNames, attackSettings, getAttack, type TriggerBuilder } from './attacks/registry.js';
export { parseAttackOptions } from './attacks/options.js';
export type { Attack, Trigger } from './attacks/trigger.js';
export { poisonSamples, type PoisonMode, type PoisonOptions } from './attacks/poison.js';
export { evaluate, loadEvalSet } from './eval/evaluate.js';
export { inspectModel } from './eval/inspect.js';
export { detectionMetrics } from './eval/detection.js';
export { BadSampleLog } from './sources/bad-samples.js';
export { PbeError } from './errors.js';
export type { Sample, RawSample } from './sources/types.js';
