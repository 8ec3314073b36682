import { type Command, CommanderError } from 'commander';
import { PbeError } from '../errors.js';
import { exitCodes, StoppedError } from '../pipeline/stop-signal.js';

/** Exit codes: 0 ok, 1 bad input or model, 2 usage or config, 3 backend, 70 internal error, 75 stopped by a signal after a checkpoint (resume with --resume). */
export function exitCode(err: unknown): number {
  if (err instanceof StoppedError) return exitCodes.stopped;
  // commander has printed its own message: a bad flag or value is a usage error, help and version exit 0
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof PbeError) return err.code === 'usage' || err.code === 'config' ? 2 : err.code === 'backend' ? 3 : 1;
  return 70;
}

/**
 * Runs a command line on a program (built with exitOverride) and returns its exit code, the error written as
 * one `pbe:` line: what main.ts does, callable in process (the fault suite runs commands this way).
 */
export async function runProgram(program: Command, argv: string[], writeErr: (text: string) => void = (t) => process.stderr.write(t)): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return exitCode(err);
    if (err instanceof PbeError || err instanceof StoppedError) {
      writeErr(`pbe: ${err.message}\n`);
    } else {
      const stage = (err as { stage?: string }).stage;
      writeErr(`pbe: internal error${stage ? ` in ${stage}` : ''}: ${(err as Error).message ?? err}\n`);
      if (process.env.PBE_DEBUG) writeErr(`${(err as Error).stack}\n`);
    }
    return exitCode(err);
  }
}
