export { initBackend, backendRequests } from './select.js';
export type { BackendInfo, BackendName, BackendRequest } from './select.js';
export { registerWasmKernels, unregisterWasmKernels, wasmKernelsRegistered, wasmKernelNames } from './wasm-kernels/register.js';
