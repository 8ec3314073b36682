import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { knownSchemes, localPath, openUrl, registerScheme, schemeOf } from '../../src/sources/open.js';
import { tmpDir } from './fixtures.js';

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('openUrl', () => {
  it('opens local paths and file: URLs', async () => {
    const path = join(tmpDir(), 'a.tar');
    writeFileSync(path, 'hello');
    expect(await readAll(openUrl(path))).toBe('hello');
    expect(await readAll(openUrl(`file://${path}`))).toBe('hello');
  });

  it('names the path of a missing file, and refuses a directory', () => {
    const dir = tmpDir();
    expect(() => openUrl(join(dir, 'missing.tar'))).toThrow(`${join(dir, 'missing.tar')}: no such file`);
    expect(() => openUrl(`file://${dir}/missing.tar`)).toThrow(`file://${dir}/missing.tar: no such file ${dir}/missing.tar`);
    mkdirSync(join(dir, 'd'));
    expect(() => openUrl(join(dir, 'd'))).toThrow('not a regular file');
  });

  it('lists the known schemes for an unknown one', () => {
    expect(() => openUrl('ftp://host/x.tar')).toThrow(
      'ftp://host/x.tar: unsupported URL scheme "ftp"; supported: file, gs, http, https, pipe:CMD, s3, - (stdin) (plain paths are files)',
    );
  });

  it('dispatches through the scheme table, which a later scheme extends', async () => {
    registerScheme('mem', (url) => Readable.from([Buffer.from(url.slice('mem:'.length))]));
    expect(knownSchemes()).toContain('mem');
    expect(await readAll(openUrl('mem:some bytes'))).toBe('some bytes');
  });
});

describe('schemeOf / localPath', () => {
  it('reads schemes the WebDataset way', () => {
    expect(schemeOf('data/x.tar')).toBe('file');
    expect(schemeOf('/abs/x.tar')).toBe('file');
    expect(schemeOf('C:\\x.tar')).toBe('file');
    expect(schemeOf('HTTPS://h/x.tar')).toBe('https');
    expect(schemeOf('s3://b/x.tar')).toBe('s3');
    expect(schemeOf('pipe:curl -s x')).toBe('pipe');
    expect(schemeOf('-')).toBe('stdin');
    expect(localPath('file:///abs/x.tar')).toBe('/abs/x.tar');
    expect(localPath('file:rel/x.tar')).toBe('rel/x.tar');
    expect(localPath('gs://b/x.tar')).toBeUndefined();
  });
});
