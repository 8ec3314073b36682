import { statSync } from 'node:fs';
import { usageError } from '../errors.js';
import { CsvManifestWriter, readCsvManifest } from './csv-manifest.js';
import { ImageFolderWriter, readImageFolder } from './folder.js';
import { encodePng } from './image.js';
import { MsgpackShardWriter, readMsgpackShard } from './msgpack.js';
import { localPath } from './open.js';
import { readTarShard, type TarReadOptions } from './tar-reader.js';
import { ShardWriter } from './tar-writer.js';
import type { RawSample, Sample } from './types.js';

/**
 * The data formats, in one table: how each is recognised, read (url → raw samples) and written (samples → files).
 *
 *   formatOf('s3://b/train-000001.msgpack')  // 'msgpack'
 *   formats.tar.read(url, opts)              // AsyncIterable<RawSample>
 *   const w = formats.csv.writer('out/train.csv', { samplesPerShard: 1000 }); await w.write(sample); await w.close();
 *
 * tar: WebDataset shards (`.tar`); msgpack: record shards (`.msgpack`, `.mpk`); csv: manifests (`.csv`);
 * folder: image folders (a local directory without shards). A URL with no telling extension (`-`, `pipe:`)
 * is read as tar, as WebDataset does, unless a format is named.
 */

export type FormatName = 'tar' | 'msgpack' | 'csv' | 'folder';

export interface SampleWriter {
  write(sample: Sample): Promise<void>;
  /** Finishes and returns the shards (or manifest, or folder) written. */
  close(): Promise<string[]>;
  abort(): Promise<void>;
}

export interface WriterOptions {
  samplesPerShard?: number;
  /** msgpack: 'uint8' (default) or 'float32'. */
  dtype?: 'uint8' | 'float32';
  onShard?: (shard: { path: string; index: number; samples: number; bytes: number }) => void;
}

export interface Format {
  name: FormatName;
  extensions: string[];
  read(url: string, opts: TarReadOptions): AsyncIterable<RawSample>;
  /** `out`: a shard prefix or %06d pattern (tar, msgpack), a .csv path (csv), a directory (folder). */
  writer(out: string, opts: WriterOptions): SampleWriter;
}

export const formats: Record<FormatName, Format> = {
  tar: { name: 'tar', extensions: ['.tar'], read: readTarShard, writer: (out, o) => tarSampleWriter(out, o) },
  msgpack: { name: 'msgpack', extensions: ['.msgpack', '.mpk'], read: readMsgpackShard, writer: (out, o) => new MsgpackShardWriter(out, o) },
  csv: { name: 'csv', extensions: ['.csv'], read: readCsvManifest, writer: (out) => new CsvManifestWriter(out) },
  folder: { name: 'folder', extensions: [], read: readImageFolder, writer: (out) => new ImageFolderWriter(out) },
};

export const formatNames = Object.keys(formats) as FormatName[];

/** The format of one URL: the named one, else by extension, else a local directory is a folder, else tar. */
export function formatOf(url: string, named: FormatName | 'auto' = 'auto'): FormatName {
  if (named !== 'auto') {
    if (!formats[named]) throw usageError(`unknown data format "${named}"; known: auto, ${formatNames.join(', ')}`);
    return named;
  }
  const path = url.replace(/[?#].*$/, '').toLowerCase();
  for (const f of Object.values(formats)) if (f.extensions.some((e) => path.endsWith(e))) return f.name;
  const local = localPath(url);
  if (local !== undefined && isDirectory(local)) return 'folder';
  return 'tar';
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** WebDataset tar shards of decoded samples: `<key>.png` (8-bit) and `<key>.cls` when labelled, `<key>.json` with metadata. */
function tarSampleWriter(out: string, opts: WriterOptions): SampleWriter {
  const writer = new ShardWriter(out, { samplesPerShard: opts.samplesPerShard, onShard: opts.onShard });
  return {
    async write(s) {
      const files = new Map<string, Uint8Array>([['png', encodePng(s.pixels, s.height, s.width, s.channels)]]);
      if (s.label !== undefined) files.set('cls', Buffer.from(String(s.label)));
      if (s.meta !== undefined) files.set('json', Buffer.from(JSON.stringify(s.meta)));
      await writer.write({ key: s.key, files });
    },
    close: () => writer.close(),
    abort: () => writer.abort(),
  };
}
