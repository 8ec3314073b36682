import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { asOutputError } from '../errors.js';

/**
 * Writes a file under a temporary name and renames it, so a crash never leaves a half-written file. A failed
 * write (a full or read-only disk) removes its temporary file and throws an error naming the path (exit 1).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeAtomicWith(path, (tmp) => writeFile(tmp, data));
}

/** As writeFileAtomic, for a writer that streams into the temporary file `write` is given. */
export async function writeAtomicWith(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempPath(path);
  try {
    await mkdir(dirname(path), { recursive: true });
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw asOutputError(path, err);
  }
}

/** The temporary name a file is written under before its rename. */
export function tempPath(path: string): string {
  return `${path}.${process.pid}.tmp`;
}
