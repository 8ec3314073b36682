import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { inputError, usageError } from '../errors.js';
import type { OpenOptions } from './open-options.js';

/**
 * `-` (standard input) and `pipe:CMD` (WebDataset's convention: the bytes a shell command writes to stdout).
 *
 *   tar -c ... | pbe eval --data - ...
 *   pbe eval --allow-pipe --data 'pipe:curl -s https://host/test-000000.tar' ...
 *
 * `pipe:` runs a command, so it is refused unless `allowPipe` (`--allow-pipe`) is given. A command that exits
 * with a non-zero status fails the read, with the end of its stderr in the message. Standard input can be read
 * once: a second open (a command that reads its data every epoch) is an error that says so.
 */

let stdinTaken = false;

export function openStdin(url: string, _opts: OpenOptions): Readable {
  if (stdinTaken) {
    throw inputError({ url }, 'standard input can be read only once, and this data is being read again (commands such as purify read it every epoch): save it to a file first');
  }
  stdinTaken = true;
  return process.stdin;
}

export function openPipe(url: string, opts: OpenOptions): Readable {
  const command = url.slice('pipe:'.length).trim();
  if (!opts.allowPipe) {
    throw usageError(`${url}: a pipe: URL runs a shell command; pass --allow-pipe (allowPipe: true) to allow it`);
  }
  if (command === '') throw inputError({ url }, 'pipe: URL without a command');
  return Readable.from(pipeChunks(url, command, opts.signal), { objectMode: false, highWaterMark: 1 << 20 });
}

async function* pipeChunks(url: string, command: string, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-2000);
  });
  const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, sig: null, error }));
    child.on('close', (code, sig) => resolve({ code, sig }));
  });
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Uint8Array;
    const { code, sig, error } = await exited;
    finished = true;
    if (error) throw inputError({ url }, `cannot run the command: ${error.message}`, error);
    if (code !== 0) {
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      throw inputError({ url }, `command exited with ${sig ? `signal ${sig}` : `status ${code}`}${tail ? `: ${tail}` : ''}`);
    }
  } finally {
    if (!finished && child.exitCode === null) child.kill();
  }
}
