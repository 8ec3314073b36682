/**
 * Graceful stop for long jobs: the first SIGINT/SIGTERM asks the run to stop after the current step (it then
 * writes a checkpoint and exits with `exitCodes.stopped`); a second one exits at once.
 */
export const exitCodes = { stopped: 75, killed: 130 } as const;

export class StopSignal {
  private requested: string | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.requested) {
      process.stderr.write(`pbe: second ${signal}: exiting now, without a checkpoint\n`);
      process.exit(exitCodes.killed);
    }
    this.requested = signal;
    process.stderr.write(`pbe: ${signal}: stopping after the current step and writing a checkpoint (send it again to exit at once)\n`);
  };

  get stopRequested(): string | undefined {
    return this.requested;
  }

  install(): this {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    return this;
  }

  uninstall(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/** Thrown by a run that stopped on request after writing its checkpoint. */
export class StoppedError extends Error {
  constructor(readonly signal: string, readonly checkpoint?: string) {
    super(`stopped on ${signal}; resume with --resume${checkpoint ? ` (checkpoint ${checkpoint})` : ''}`);
    this.name = 'StoppedError';
  }
}
