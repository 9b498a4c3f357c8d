import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FsBackend } from '../../src/backend/fs-backend.js';
import { backendConformance } from './conformance.js';
import { tmpDir } from '../helpers.js';
import { bufferSource } from '../../src/backend/backend.js';
import { hashBuffer } from '../../src/cas/hash.js';

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

it('fs: temp files of dead processes are removed on open', async () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, '.tmp'), { recursive: true });
  // pid 2^22+1 is above the default pid_max of small machines: not running
  const stale = path.join(dir, '.tmp', `${4194305}-deadbeef`);
  fs.writeFileSync(stale, 'partial');
  new FsBackend(dir);
  expect(fs.existsSync(stale)).toBe(false);
});
