/** Log lines for long jobs: readable lines on a terminal, one JSON object per line otherwise (or when asked). */
export type LogFormat = 'pretty' | 'json';
export type Log = (message: string, fields?: Record<string, unknown>) => void;

export function createLog(opts: { format?: LogFormat; quiet?: boolean; write?: (line: string) => void }): Log {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const format = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  if (opts.quiet) return () => {};
  if (format === 'json') {
    return (msg, fields) => write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n');
  }
  return (msg, fields) => {
    const extra = fields ? ' ' + Object.entries(fields).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => `${k}=${fmt(v)}`).join(' ') : '';
    write(`[pbe ${new Date().toISOString().slice(11, 19)}] ${msg}${extra}\n`);
  };
}

/** Bars are drawn when a person watches: stderr is a terminal, logs are pretty and not silenced. */
export function wantsProgressBars(opts: { format?: LogFormat; quiet?: boolean }): boolean {
  return Boolean(process.stderr.isTTY) && !opts.quiet && opts.format !== 'json';
}

function fmt(v: unknown): string {
  if (typeof v === 'number' && !Number.isInteger(v)) return v.toPrecision(4);
  return typeof v === 'string' ? v : JSON.stringify(v);
}
