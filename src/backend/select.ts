import * as tf from '@tensorflow/tfjs';
import { backendError } from '../errors.js';
import { wasmBinaryDir } from './wasm-paths.js';
import { registerDilatedConvGradients } from './dilated-gradients.js';
import { registerWasmKernels, wasmKernelNames } from './wasm-kernels/register.js';

/** What a caller may ask for (`--backend`, or env `PBE_BACKEND`). */
export type BackendRequest = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
/** What can be loaded: `tensorflow-gpu` is `@tensorflow/tfjs-node-gpu`, `tensorflow` is `@tensorflow/tfjs-node`. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** The backend now active. */
  name: BackendName;
  requested: BackendRequest;
  /** Candidates tried before `name`, in order, with why each did not load. */
  skipped: { name: BackendName; reason: string }[];
  /** Project kernels registered on top of the backend (wasm only). */
  kernels: string[];
}

export const backendRequests: readonly BackendRequest[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

interface Candidate {
  name: BackendName;
  /** The tfjs backend name it registers. */
  tfName: string;
  /** What to install when it is missing. */
  install: string;
  load(): Promise<void>;
}

const candidates: Record<BackendName, Candidate> = {
  'tensorflow-gpu': {
    name: 'tensorflow-gpu', tfName: 'tensorflow', install: 'npm install @tensorflow/tfjs-node-gpu (needs CUDA)',
    load: () => importOptional('@tensorflow/tfjs-node-gpu'),
  },
  tensorflow: {
    name: 'tensorflow', tfName: 'tensorflow', install: 'npm install @tensorflow/tfjs-node',
    load: () => importOptional('@tensorflow/tfjs-node'),
  },
  wasm: {
    name: 'wasm', tfName: 'wasm', install: 'npm install @tensorflow/tfjs-backend-wasm',
    load: async () => {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      if (!wasmPathSet) {
        wasm.setWasmPaths(wasmBinaryDir());
        wasmPathSet = true;
      }
    },
  },
  cpu: { name: 'cpu', tfName: 'cpu', install: '@tensorflow/tfjs (the cpu backend ships with it)', load: async () => {} },
};

const order: Record<BackendRequest, BackendName[]> = {
  auto: ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
  tensorflow: ['tensorflow-gpu', 'tensorflow'],
  wasm: ['wasm'],
  cpu: ['cpu'],
};

let wasmPathSet = false;
/** Settled selections by request: a repeat call switches back without reloading or logging again. */
const chosen = new Map<BackendRequest, BackendInfo>();

/**
 * Chooses, loads and activates the tfjs backend. `auto` takes the first that loads of tfjs-node-gpu, tfjs-node,
 * wasm, cpu; an explicit request takes only that one (`tensorflow`: GPU build first, then CPU build) and throws a
 * backend error naming what to install when it cannot load. With `requested` undefined, env `PBE_BACKEND` decides
 * (default `auto`). Logs the choice and the skipped candidates once per request; calling again is cheap.
 * On wasm the project kernels (`src/backend/wasm-kernels`) are registered before it returns; on every backend the
 * dilated-convolution gradients (`dilated-gradients.ts`).
 */
export async function initBackend(requested?: BackendRequest, log: (msg: string) => void = defaultLog): Promise<BackendInfo> {
  const request = parseRequest(requested);
  const settled = chosen.get(request);
  if (settled !== undefined) {
    await activate(candidates[settled.name]);
    return cloneInfo(settled);
  }
  const skipped: BackendInfo['skipped'] = [];
  for (const name of order[request]) {
    const candidate = candidates[name];
    try {
      await activate(candidate);
    } catch (err) {
      skipped.push({ name, reason: reasonOf(err) });
      continue;
    }
    const info: BackendInfo = { name, requested: request, skipped, kernels: name === 'wasm' ? [...wasmKernelNames] : [] };
    chosen.set(request, info);
    const why = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
    log(`backend ${name} (requested ${request})${why === '' ? '' : `; skipped ${why}`}`);
    return cloneInfo(info);
  }
  const tried = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  const install = order[request].map((n) => candidates[n].install).join(' or ');
  throw backendError(`backend "${request}" cannot be loaded (${tried}); install it with ${install}, or use --backend auto`);
}

function parseRequest(requested: BackendRequest | undefined): BackendRequest {
  const source = requested === undefined ? 'PBE_BACKEND' : 'backend';
  const value: string = requested ?? process.env.PBE_BACKEND ?? 'auto';
  if ((backendRequests as readonly string[]).includes(value)) return value as BackendRequest;
  throw backendError(`${source} is expected to be one of ${backendRequests.join(', ')}, but got ${JSON.stringify(value)}`);
}

async function activate(candidate: Candidate): Promise<void> {
  await candidate.load();
  if (tf.getBackend() !== candidate.tfName || tf.findBackend(candidate.tfName) === null) {
    // setBackend reports a failed initialisation by returning false (and a console warning), not by throwing.
    const ok = await tf.setBackend(candidate.tfName);
    if (!ok) throw new Error(`tf.setBackend('${candidate.tfName}') failed to initialise it`);
  }
  await tf.ready();
  registerDilatedConvGradients();
  if (candidate.name === 'wasm') registerWasmKernels();
}

async function importOptional(pkg: string): Promise<void> {
  try {
    await import(pkg);
  } catch (err) {
    const code = (err as { code?: string }).code;
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    // Not found *itself*; a missing dependency of an installed package is a load failure.
    if (notFound && reasonOf(err).includes(`'${pkg}'`)) throw new Error(`${pkg} is not installed`);
    throw new Error(`${pkg} failed to load: ${reasonOf(err)}`, { cause: err });
  }
}

function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0];
}

function cloneInfo(info: BackendInfo): BackendInfo {
  return { ...info, skipped: info.skipped.map((s) => ({ ...s })), kernels: [...info.kernels] };
}

function defaultLog(msg: string): void {
  process.stderr.write(`pbe: ${msg}\n`);
}
