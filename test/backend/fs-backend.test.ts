import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FsBackend } from '../../src/backend/fs-backend.js';
import { backendConformance } from './conformance.js';
import { tmpDir } from '../helpers.js';
import { bufferSource } from '../../src/backend/backend.js';
import { hashBuffer } from '../../src/util/hash.js';
import { TEMP_STALE_SECONDS } from '../../src/limits.js';

backendConformance('fs', async () => {
  const dir = tmpDir();
  return { backend: new FsBackend(dir), cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

it('fs: objects are fanned out as ab/cd/<key> and no temp file remains', async () => {
  const dir = tmpDir();
  const b = new FsBackend(dir);
  const data = Buffer.from('fan out');
  const k = hashBuffer(data).toString('hex');
  await b.put(k, bufferSource(data), { size: data.length, digest: hashBuffer(data) });
  expect(fs.existsSync(path.join(dir, k.slice(0, 2), k.slice(2, 4), k))).toBe(true);
  expect(fs.readdirSync(path.join(dir, '.tmp'))).toEqual([]);
});

it('fs: temp files untouched for a day are removed on open; fresh ones (a live writer, whatever its PID or namespace) are kept', async () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, '.tmp'), { recursive: true });
  const stale = path.join(dir, '.tmp', 'w-deadbeef');
  const fresh = path.join(dir, '.tmp', `w-${process.pid}-alive`);
  fs.writeFileSync(stale, 'partial');
  fs.writeFileSync(fresh, 'being written');
  const old = (Date.now() - (TEMP_STALE_SECONDS + 60) * 1000) / 1000;
  fs.utimesSync(stale, old, old);
  new FsBackend(dir);
  expect(fs.existsSync(stale)).toBe(false);
  expect(fs.existsSync(fresh)).toBe(true);
});
