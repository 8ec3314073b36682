/** Log lines for long jobs: readable lines on a terminal, one JSON object per line otherwise (or when asked). */
export type LogFormat = 'pretty' | 'json';
export type Log = (message: string, fields?: Record<string, unknown>) => void;

export function createLog(opts: { format?: LogFormat; quiet?: boolean; stream?: NodeJS.WritableStream }): Log {
  const stream = opts.stream ?? process.stderr;
  const format = opts.format ?? ((stream as { isTTY?: boolean }).isTTY ? 'pretty' : 'json');
  if (opts.quiet) return () => {};
  if (format === 'json') {
    return (msg, fields) => stream.write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n');
  }
  return (msg, fields) => {
    const extra = fields ? ' ' + Object.entries(fields).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => `${k}=${fmt(v)}`).join(' ') : '';
    stream.write(`[pbe ${new Date().toISOString().slice(11, 19)}] ${msg}${extra}\n`);
  };
}

function fmt(v: unknown): string {
  if (typeof v === 'number' && !Number.isInteger(v)) return v.toPrecision(4);
  return typeof v === 'string' ? v : JSON.stringify(v);
}
