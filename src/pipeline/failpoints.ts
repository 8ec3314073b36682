/**
 * Fault injection for crash tests: `PBE_FAILPOINT=<name>:<n>` kills the process with SIGKILL the n-th time
 * (1-based) the named point is reached. Unset in normal runs, where a failpoint costs one comparison.
 */
const spec = process.env.PBE_FAILPOINT?.match(/^([\w-]+):(\d+)$/);
const counts = new Map<string, number>();

export function failpoint(name: string): void {
  if (!spec || spec[1] !== name) return;
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  if (n === Number(spec[2])) process.kill(process.pid, 'SIGKILL');
}
