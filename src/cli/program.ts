import { Command } from 'commander';
import { registerBenchCommand } from './bench.js';
import { registerDataCommand } from './data.js';
import { registerDemoCommand } from './demo.js';
import { registerEvalCommand } from './eval.js';
import { registerInspectCommand } from './inspect.js';
import { registerPoisonCommand } from './poison.js';
import { registerPurifyCommand } from './purify.js';
import { registerReportCommand } from './report.js';
import { registerTrainCommand } from './train.js';

/** The `pbe` program with every command: main.ts runs it on process.argv, tests run it in process through runProgram. */
export function createProgram(): Command {
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
  registerBenchCommand(program);
  return program;
}
