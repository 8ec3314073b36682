#!/usr/bin/env node
import { runProgram } from './exit-code.js';
import { createProgram } from './program.js';

const code = await runProgram(createProgram(), process.argv);
if (code !== 0) process.exit(code);
