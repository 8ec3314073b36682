import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Storage } from '@google-cloud/storage';
import { inputError } from '../errors.js';
import type { OpenOptions } from './open-options.js';
import { resumableStream } from './resumable.js';

/**
 * `s3://bucket/key` through `@aws-sdk/client-s3` and `gs://bucket/object` through `@google-cloud/storage`, with
 * the standard credential chains (environment, shared config files, instance roles; Application Default
 * Credentials). Reads resume by byte range after a dropped connection, as for HTTP. The SDKs load on first use.
 *
 *   openUrl('s3://bucket/train-000000.tar', { s3Endpoint: 'http://127.0.0.1:9000' })  // MinIO, Ceph, s3rver: path-style
 *   openUrl('gs://bucket/train-000000.tar')
 */

export function parseBucketUrl(url: string): { bucket: string; key: string } {
  const m = /^[a-z0-9]+:\/\/([^/]+)\/(.+)$/i.exec(url);
  if (!m) throw inputError({ url }, 'expected <scheme>://<bucket>/<object key>');
  return { bucket: m[1], key: m[2] };
}

/** One client per endpoint for the whole process, created on first use. */
function clientCache<C>(create: (endpoint: string | undefined) => Promise<C>): (endpoint: string | undefined) => Promise<C> {
  const clients = new Map<string, Promise<C>>();
  return (endpoint) => {
    const id = endpoint ?? '';
    if (!clients.has(id)) clients.set(id, create(endpoint));
    return clients.get(id)!;
  };
}

const s3Client = clientCache<S3Client>((endpoint) =>
  import('@aws-sdk/client-s3').then(
    ({ S3Client }) =>
      new S3Client({
        region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      }),
  ),
);

export function openS3(url: string, opts: OpenOptions): Readable {
  const { bucket, key } = parseBucketUrl(url);
  const endpoint = opts.s3Endpoint ?? process.env.PBE_S3_ENDPOINT;
  return resumableStream(
    url,
    async (offset, signal, version) => {
      const client = await s3Client(endpoint);
      const { GetObjectCommand } = await import('@aws-sdk/client-s3');
      try {
        const res = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: key, Range: offset > 0 ? `bytes=${offset}-` : undefined, IfMatch: offset > 0 ? version : undefined }),
          { abortSignal: signal },
        );
        return { body: res.Body as AsyncIterable<Uint8Array>, length: res.ContentLength, version: res.ETag };
      } catch (err) {
        throw permanentOr(url, err, (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, (err as Error).name);
      }
    },
    opts,
  );
}

const gsClient = clientCache<Storage>((endpoint) =>
  // the client's own retries (minutes of backoff against a refused endpoint) are off: resumable.ts retries, bounded by the I/O timeout
  import('@google-cloud/storage').then(({ Storage }) => new Storage({ ...(endpoint ? { apiEndpoint: endpoint } : {}), retryOptions: { autoRetry: false, maxRetries: 0 } })),
);

export function openGs(url: string, opts: OpenOptions): Readable {
  const { bucket, key } = parseBucketUrl(url);
  const endpoint = opts.gsEndpoint ?? process.env.PBE_GS_ENDPOINT;
  return resumableStream(
    url,
    async (offset) => {
      const storage = await gsClient(endpoint);
      // validation off: a CRC of the whole object cannot check a ranged read
      const stream = storage.bucket(bucket).file(key).createReadStream({ start: offset, validation: false });
      const body = (async function* () {
        try {
          for await (const chunk of stream) yield chunk as Uint8Array;
        } catch (err) {
          const code = (err as { code?: number }).code;
          throw permanentOr(url, err, typeof code === 'number' ? code : undefined, (err as Error).name);
        } finally {
          stream.destroy();
        }
      })();
      return { body, abort: () => stream.destroy() };
    },
    opts,
  );
}

/** A 4xx (not 408/429) is permanent: an input error naming the URL. Anything else goes back to be retried. */
function permanentOr(url: string, err: unknown, status: number | undefined, name: string): unknown {
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return inputError({ url }, `${status === 404 ? 'not found' : `HTTP ${status}`} (${name}: ${(err as Error).message})`, err);
  }
  return err;
}
