#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { PbeError } from '../errors.js';
import { exitCodes, StoppedError } from '../pipeline/stop-signal.js';
import { registerDataCommand } from './data.js';
import { registerDemoCommand } from './demo.js';
import { registerEvalCommand } from './eval.js';
import { registerInspectCommand } from './inspect.js';
import { registerPoisonCommand } from './poison.js';
import { registerPurifyCommand } from './purify.js';
import { registerReportCommand } from './report.js';
import { registerTrainCommand } from './train.js';

const program = new Command('pbe')
  .description('Progressive Backdoor Erasing: purify a backdoored image classifier with only the data you have')
  .showHelpAfterError()
  .exitOverride();

registerDataCommand(program);
registerPoisonCommand(program);
registerTrainCommand(program);
registerEvalCommand(program);
registerPurifyCommand(program);
registerInspectCommand(program);
registerReportCommand(program);
registerDemoCommand(program);

/** Exit codes: 0 ok, 1 bad input or model, 2 usage or config, 3 backend, 70 internal error, 75 stopped by a signal after a checkpoint (resume with --resume). */
function exitCode(err: unknown): number {
  if (err instanceof StoppedError) return exitCodes.stopped;
  if (err instanceof PbeError) return err.code === 'usage' || err.code === 'config' ? 2 : err.code === 'backend' ? 3 : 1;
  return 70;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof PbeError || err instanceof StoppedError) {
    process.stderr.write(`pbe: ${err.message}\n`);
  } else {
    const stage = (err as { stage?: string }).stage;
    process.stderr.write(`pbe: internal error${stage ? ` in ${stage}` : ''}: ${(err as Error).message ?? err}\n`);
    if (process.env.PBE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
  }
  process.exit(exitCode(err));
}
