import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { inputError, PbeError } from '../errors.js';
import { openDefaults, type OpenOptions } from './open-options.js';

/**
 * A remote object read as one byte stream that survives dropped connections: each attempt asks for the bytes
 * from the current offset (HTTP Range), so a stream cut mid-shard resumes where it stopped and every byte is
 * delivered exactly once.
 *
 *   resumableStream(url, (offset, signal) => fetchRange(url, offset, signal), opts)
 *
 * A fetcher throws a {@link PbeError} for a permanent failure (404, access denied): that is not retried.
 * Anything else (a reset connection, a 5xx, a body shorter than announced) is retried after a growing wait;
 * `retries` consecutive failures without progress give up.
 */

export interface RangeResponse {
  body: AsyncIterable<Uint8Array>;
  /** Bytes this response will deliver (Content-Length), when known: a shorter body is a dropped connection. */
  length?: number;
  /** True when the server ignored the range and sends the object from its start. */
  fromStart?: boolean;
  /** ETag or version: a resumed response must carry the same one. */
  version?: string;
  /** Stops the response (a stalled or abandoned one). Default: the body's own destroy(), when it has one. */
  abort?: () => void;
}

export type RangeFetcher = (offset: number, signal: AbortSignal | undefined, version: string | undefined) => Promise<RangeResponse>;

export function resumableStream(url: string, fetch: RangeFetcher, opts: OpenOptions): Readable {
  return Readable.from(resumableChunks(url, fetch, opts), { objectMode: false, highWaterMark: 1 << 20 });
}

export async function* resumableChunks(url: string, fetch: RangeFetcher, opts: OpenOptions): AsyncGenerator<Uint8Array> {
  const retries = opts.retries ?? openDefaults.retries;
  const baseDelay = opts.retryDelayMs ?? openDefaults.retryDelayMs;
  const idleTimeout = opts.idleTimeoutMs ?? openDefaults.idleTimeoutMs;
  let offset = 0;
  let failures = 0;
  let version: string | undefined;
  let lastProgress = Date.now();
  for (;;) {
    opts.signal?.throwIfAborted();
    let received = 0;
    try {
      const res = await fetch(offset, opts.signal, version);
      if (version !== undefined && res.version !== undefined && res.version !== version) {
        throw inputError({ url }, `the object changed while it was read (version ${version}, now ${res.version}); cannot resume at byte ${offset}`);
      }
      version ??= res.version;
      let skip = res.fromStart ? offset : 0;
      for await (const chunk of watched(res, idleTimeout)) {
        received += chunk.length;
        if (skip > 0) {
          if (chunk.length <= skip) {
            skip -= chunk.length;
            continue;
          }
          const rest = chunk.subarray(skip);
          skip = 0;
          offset += rest.length;
          failures = 0;
          lastProgress = Date.now();
          yield rest;
          continue;
        }
        offset += chunk.length;
        failures = 0;
        lastProgress = Date.now();
        yield chunk;
      }
      if (res.length !== undefined && received < res.length) {
        throw new Error(`connection closed after ${received} of ${res.length} bytes`);
      }
      return;
    } catch (err) {
      if (err instanceof PbeError || opts.signal?.aborted) throw err;
      failures++;
      const silent = Date.now() - lastProgress;
      if (silent >= 2 * idleTimeout) {
        throw inputError({ url }, `no data for ${(silent / 1000).toFixed(0)} s at byte ${offset} (I/O timeout ${idleTimeout / 1000} s): ${(err as Error).message}`, err);
      }
      if (failures > retries) {
        throw inputError({ url }, `read failed after ${retries} retries at byte ${offset}: ${(err as Error).message}`, err);
      }
      const wait = Math.min(10_000, baseDelay * 2 ** (failures - 1));
      opts.log?.(`${url}: ${(err as Error).message}; retrying from byte ${offset} in ${wait} ms (${failures}/${retries})`, { url, offset });
      await sleep(wait, undefined, { signal: opts.signal });
    }
  }
}

/**
 * The body's chunks, failing when none comes for `idleMs` (a connection that died without closing: some clients
 * never notice), and stopping the response when the reader stops early.
 */
async function* watched(res: RangeResponse, idleMs: number): AsyncGenerator<Uint8Array> {
  const abort = res.abort ?? (() => (res.body as { destroy?: () => void }).destroy?.());
  const it = res.body[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
      });
      try {
        const next = await Promise.race([it.next(), stalled]);
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    if (!done) abort();
  }
}
