/**
 * Fault injection for crash tests: `PBE_FAILPOINT=<name>:<n>` kills the process with SIGKILL the n-th time
 * (1-based) the named point is reached. Unset in normal runs, where a failpoint costs one comparison.
 */
const spec = process.env.PBE_FAILPOINT?.match(/^([\w-]+):(\d+)$/);
const counts = new Map<string, number>();

export function failpoint(name: string): void {
  if (armed?.name === name && ++armed.seen === armed.at) {
    armed = undefined;
    throw new FailpointError(name);
  }
  if (!spec || spec[1] !== name) return;
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  if (n === Number(spec[2])) process.kill(process.pid, 'SIGKILL');
}

/** Thrown by a failpoint armed in-process (tests of resumption without a child process). */
export class FailpointError extends Error {
  constructor(readonly point: string) {
    super(`failpoint ${point}`);
    this.name = 'FailpointError';
  }
}

let armed: { name: string; at: number; seen: number } | undefined;

/** Arms `name` to throw FailpointError the `at`-th time (1-based) it is reached in this process; disarmed once it fires. */
export function armFailpoint(name: string, at: number): void {
  armed = { name, at, seen: 0 };
}
