/** Every error pbe raises on purpose comes from here, so messages share one shape and carry their cause. */

export type ErrorCode = 'config' | 'input' | 'backend' | 'model' | 'usage' | 'internal';

export class PbeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PbeError';
    this.code = code;
  }
}

/** A config field failed validation: names its path, what was expected and what came. */
export function configError(path: string, expected: string, actual: unknown): PbeError {
  return new PbeError('config', `config.${path} is expected to be ${expected}, but got ${describe(actual)}`);
}

/** Bad input data: names the file or URL and, when known, the sample key. */
export function inputError(where: { url: string; key?: string }, what: string, cause?: unknown): PbeError {
  const at = where.key === undefined ? where.url : `${where.url} (sample ${where.key})`;
  return new PbeError('input', `${at}: ${what}`, { cause });
}

/** A backdoor attack's option failed validation: names `<attack>.<option>`, what was expected and what came. */
export function attackOptionError(path: string, expected: string, actual: unknown, detail?: string): PbeError {
  return new PbeError('config', `attack option ${path} is expected to be ${expected}, but got ${describe(actual)}${detail ? ` (${detail})` : ''}`);
}

export function backendError(message: string, cause?: unknown): PbeError {
  return new PbeError('backend', message, { cause });
}

export function modelError(location: string, what: string, cause?: unknown): PbeError {
  return new PbeError('model', `${location}: ${what}`, { cause });
}

/** A file pbe must write cannot be written (a read-only or full disk, a file where a directory belongs): exit 1, naming it. */
export function outputError(path: string, cause: unknown): PbeError {
  const e = cause as NodeJS.ErrnoException;
  const why = e?.code === 'ENOSPC' ? 'the disk is full' : e?.code === 'EACCES' || e?.code === 'EPERM' || e?.code === 'EROFS' ? 'permission denied (read-only?)' : e?.code === 'ENOTDIR' || e?.code === 'EEXIST' ? 'a file stands where a directory is needed' : (e?.message ?? String(cause));
  return new PbeError('input', `cannot write ${path}: ${why}${e?.code ? ` (${e.code})` : ''}`, { cause });
}

/** An fs error from writing `path` as a PbeError; a PbeError passes through. */
export function asOutputError(path: string, err: unknown): PbeError {
  return err instanceof PbeError ? err : outputError(path, err);
}

export function usageError(message: string): PbeError {
  return new PbeError('usage', message);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
