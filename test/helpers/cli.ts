import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { runProgram } from '../../src/cli/exit-code.js';
import { createProgram } from '../../src/cli/program.js';
import { packageRoot } from '../../src/config/paths.js';

export type CliResult = { code: number; stdout: string; stderr: string };

/**
 * `pbe ARGS` in this process, as main.ts runs it (the same program and runProgram): its exit code and what it
 * wrote to stdout and stderr. `env` is set for the run only. Calls must not overlap (stdout/stderr are swapped).
 */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const { write: writeOut } = process.stdout;
  const { write: writeErr } = process.stderr;
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  process.stdout.write = capture((t) => (stdout += t));
  process.stderr.write = capture((t) => (stderr += t));
  try {
    const code = await runProgram(createProgram(), ['node', 'pbe', ...args], (t) => void (stderr += t));
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** A stream write() that hands the text to `add` and calls the write's callback, as a stream would. */
function capture(add: (text: string) => void): typeof process.stdout.write {
  return ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    if (done) process.nextTick(done);
    return true;
  }) as typeof process.stdout.write;
}

export const compiledCli = join(packageRoot, 'dist/src/cli/main.js');

/**
 * `pbe ARGS` as its own process, the compiled CLI (`npm test` builds it first): for what needs a process, a
 * SIGKILL failpoint, a signal, stdin. `onStderr` sees the stderr so far each time more arrives.
 */
export function spawnCli(
  args: string[],
  opts: { env?: Record<string, string>; input?: Buffer; onStderr?: (text: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [compiledCli, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(opts.input);
  });
}
