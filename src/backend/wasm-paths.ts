import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Absolute folder (with a trailing separator) holding tfjs-backend-wasm's `.wasm` binaries, resolved from this
 * module rather than the working directory, so loading works from any cwd and inside worker threads.
 */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return join(dirname(pkg), 'dist') + '/';
}
