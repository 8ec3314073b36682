/** How URLs are opened: what every opener of the scheme table (open.ts) takes. */

export interface OpenOptions {
  signal?: AbortSignal;
  /** S3-compatible endpoint (MinIO, Ceph, s3rver, ...), path-style. Default: $PBE_S3_ENDPOINT, else AWS. */
  s3Endpoint?: string;
  /** Google Cloud Storage API endpoint. Default: $PBE_GS_ENDPOINT, else Google's ($STORAGE_EMULATOR_HOST is honoured). */
  gsEndpoint?: string;
  /** `pipe:CMD` runs CMD in a shell: refused unless this is true. */
  allowPipe?: boolean;
  /** Remote reads: attempts after a failure (a dropped connection, a 5xx) before giving up. Default 5. */
  retries?: number;
  /** Remote reads: the first wait before a retry, doubled each time (at most 10 s). Default 250 ms. */
  retryDelayMs?: number;
  /**
   * Remote reads: a connection that sends nothing for this long is taken as dropped, and retried; a URL that
   * delivers no byte for twice this long, over all its attempts, fails. Default 20 s.
   */
  idleTimeoutMs?: number;
  /** Told about retries and resumptions. */
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export const openDefaults = { retries: 5, retryDelayMs: 250, idleTimeoutMs: 20_000 };
