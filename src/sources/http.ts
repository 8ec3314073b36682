import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { inputError } from '../errors.js';
import { openDefaults, type OpenOptions } from './open-options.js';
import { resumableStream, type RangeResponse } from './resumable.js';

/**
 * `http://` and `https://`: GET, following redirects, retried after 5xx/408/429 and network errors, and resumed
 * with `Range: bytes=N-` (`If-Range` the first response's ETag) when the connection drops mid-body. A server
 * that ignores the range is read again from the start, skipping what was already delivered.
 *
 *   openUrl('https://host/shards/train-000123.tar')
 */

const MAX_REDIRECTS = 5;

export function openHttp(url: string, opts: OpenOptions): Readable {
  // a connection (or a response's headers) silent this long is taken as dropped, and retried
  const timeout = opts.idleTimeoutMs ?? openDefaults.idleTimeoutMs;
  return resumableStream(url, (offset, signal, version) => get(url, offset, signal, version, 0, timeout), opts);
}

async function get(url: string, offset: number, signal: AbortSignal | undefined, version: string | undefined, redirects: number, timeout: number): Promise<RangeResponse> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (offset > 0) {
    headers.range = `bytes=${offset}-`;
    if (version) headers['if-range'] = version;
  }
  const res = await request(url, headers, signal, timeout);
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400 && res.headers.location) {
    res.resume();
    if (redirects >= MAX_REDIRECTS) throw inputError({ url }, `more than ${MAX_REDIRECTS} redirects`);
    return get(new URL(res.headers.location, url).toString(), offset, signal, version, redirects + 1, timeout);
  }
  if (status !== 200 && status !== 206) {
    res.resume();
    const text = `HTTP ${status} ${res.statusMessage ?? ''}`.trim();
    if (status >= 500 || status === 408 || status === 429) throw new Error(text); // retried
    throw inputError({ url }, text);
  }
  const etag = res.headers.etag ?? res.headers['last-modified'];
  const fromStart = offset > 0 && status === 200;
  // A changed object answers an If-Range with 200: the resumable reader sees the new version and stops.
  const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
  return { body: res as AsyncIterable<Uint8Array>, length, fromStart, version: etag };
}

function request(url: string, headers: Record<string, string>, signal: AbortSignal | undefined, timeout: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') || url.startsWith('HTTPS:') ? https : http;
    const req = client.get(url, { headers, signal }, resolve);
    req.on('error', reject);
    req.setTimeout(timeout, () => req.destroy(new Error(`no data for ${timeout / 1000} s`)));
  });
}
