import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import type { BlobBackend, PutSource } from '../../src/backend/backend.js';
import { bufferSource } from '../../src/backend/backend.js';
import { hashBuffer } from '../../src/util/hash.js';
import { isMailcasError } from '../../src/errors.js';

async function readAll(s: AsyncIterable<Buffer> | null): Promise<Buffer | null> {
  if (!s) return null;
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}

const keyOf = (b: Buffer): string => hashBuffer(b).toString('hex');
const expectOf = (b: Buffer) => ({ size: b.length, digest: hashBuffer(b) });

/**
 * The one suite every blob backend runs. A backend's own test file only
 * supplies a factory. Hostile cases included: a source that lies about its
 * length or a wrong digest must fail and leave nothing stored.
 */
export function backendConformance(name: string, factory: () => Promise<{ backend: BlobBackend; cleanup?: () => Promise<void> }>): void {
  describe(`backend conformance: ${name}`, () => {
    let b: BlobBackend;
    let cleanup: (() => Promise<void>) | undefined;
    beforeEach(async () => {
      const f = await factory();
      b = f.backend;
      cleanup = f.cleanup;
    });
    afterEach(async () => {
      await b.close();
      await cleanup?.();
    });

    it('stores, reads back, stats and lists an object', async () => {
      const data = Buffer.from('hello blob\r\n'.repeat(1000));
      const k = keyOf(data);
      expect(await b.put(k, bufferSource(data), expectOf(data))).toBe(true);
      expect((await readAll(await b.get(k)))!.equals(data)).toBe(true);
      const st = await b.stat(k);
      expect(st?.size).toBe(data.length);
      const listed = [];
      for await (const o of b.list()) listed.push(o);
      expect(listed.map((o) => o.key)).toEqual([k]);
      expect(listed[0].size).toBe(data.length);
    });

    it('readWhole (local backends): the exact bytes up to the limit, undefined above it, null when missing', async () => {
      if (!b.readWhole) return; // optional: remote backends stream
      const data = Buffer.from('whole object\r\n'.repeat(500));
      const k = keyOf(data);
      await b.put(k, bufferSource(data), expectOf(data));
      expect(b.readWhole(k, data.length)!.equals(data)).toBe(true);
      expect(b.readWhole(k, data.length - 1)).toBeUndefined();
      expect(b.readWhole('ab'.repeat(32), 1 << 20)).toBeNull();
      const empty = Buffer.alloc(0);
      await b.put(keyOf(Buffer.from('e')), bufferSource(empty), expectOf(empty));
      expect(b.readWhole(keyOf(Buffer.from('e')), 10)!.length).toBe(0);
    });

    it('a missing object is null, not an error', async () => {
      const k = 'ab'.repeat(32);
      expect(await b.get(k)).toBeNull();
      expect(await b.stat(k)).toBeNull();
      await b.delete(k); // idempotent
    });

    it('create-exclusive: a second put of the same key keeps the first and returns false', async () => {
      const data = Buffer.from('first');
      const k = keyOf(data);
      expect(await b.put(k, bufferSource(data), expectOf(data))).toBe(true);
      expect(await b.put(k, bufferSource(data), expectOf(data))).toBe(false);
      expect((await readAll(await b.get(k)))!.toString()).toBe('first');
    });

    it('overwrite replaces an existing object (healing a damaged one), verified like any put', async () => {
      const data = Buffer.from('the right bytes '.repeat(100));
      const k = keyOf(data);
      const damaged = Buffer.from(data);
      damaged[7] ^= 0x20;
      // a damaged object under the key (as disk rot would leave it): stored with its own digest
      expect(await b.put(k, bufferSource(damaged), expectOf(damaged))).toBe(true);
      expect(await b.put(k, bufferSource(data), expectOf(data))).toBe(false); // create-if-absent keeps it
      // a wrong digest on overwrite fails and keeps what was there
      await expect(b.put(k, bufferSource(data), { size: data.length, digest: hashBuffer(damaged) }, { overwrite: true })).rejects.toMatchObject({ code: 'E_INTEGRITY' });
      expect((await readAll(await b.get(k)))!.equals(damaged)).toBe(true);
      expect(await b.put(k, bufferSource(data), expectOf(data), { overwrite: true })).toBe(true);
      expect((await readAll(await b.get(k)))!.equals(data)).toBe(true);
      const listed = [];
      for await (const o of b.list()) listed.push(o.key);
      expect(listed).toEqual([k]);
    });

    it('reads byte ranges', async () => {
      const data = Buffer.alloc(1_000_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
      const k = keyOf(data);
      await b.put(k, bufferSource(data), expectOf(data));
      for (const [s, e] of [
        [0, 10],
        [999_990, 1_000_000],
        [123_456, 654_321],
        [5, 5],
      ]) {
        const got = await readAll(await b.get(k, { start: s, end: e }));
        expect(got!.equals(data.subarray(s, e))).toBe(true);
      }
    });

    it('streams a large object in chunks from a multi-chunk source', async () => {
      const chunk = Buffer.alloc(1024 * 1024, 0x5a);
      const n = 20;
      const whole = Buffer.concat(Array(n).fill(chunk));
      const src: PutSource = {
        size: whole.length,
        *open() {
          for (let i = 0; i < n; i++) yield chunk;
        },
      };
      const k = keyOf(whole);
      expect(await b.put(k, src, expectOf(whole))).toBe(true);
      expect((await b.stat(k))!.size).toBe(whole.length);
      expect((await readAll(await b.get(k)))!.equals(whole)).toBe(true);
    });

    it('hostile: a wrong digest fails and leaves nothing stored', async () => {
      const data = Buffer.from('the real bytes');
      const k = keyOf(data);
      const err = await b.put(k, bufferSource(data), { size: data.length, digest: hashBuffer(Buffer.from('other')) }).catch((e) => e);
      expect(isMailcasError(err, 'E_INTEGRITY')).toBe(true);
      expect(await b.stat(k)).toBeNull();
      expect(await b.get(k)).toBeNull();
      const listed = [];
      for await (const o of b.list()) listed.push(o);
      expect(listed).toEqual([]);
    });

    it('hostile: a source shorter than declared fails and leaves nothing stored', async () => {
      const data = Buffer.from('short');
      const k = keyOf(data);
      const err = await b.put(k, { size: 100, open: () => [data] }, { size: 100, digest: hashBuffer(data) }).catch((e) => e);
      expect(isMailcasError(err, 'E_SHORT_WRITE')).toBe(true);
      expect(await b.stat(k)).toBeNull();
    });

    it('hostile: a source longer than declared fails and leaves nothing stored', async () => {
      const data = Buffer.from('longer than it says');
      const k = keyOf(data);
      const err = await b.put(k, { size: 4, open: () => [data] }, { size: 4, digest: hashBuffer(data.subarray(0, 4)) }).catch((e) => e);
      expect(isMailcasError(err, 'E_SHORT_WRITE')).toBe(true);
      expect(await b.stat(k)).toBeNull();
    });

    it('hostile: a source that throws midway leaves nothing stored', async () => {
      const k = 'cd'.repeat(32);
      const src: PutSource = {
        size: 10,
        *open() {
          yield Buffer.from('12345');
          throw new Error('disk on fire');
        },
      };
      await expect(b.put(k, src, { size: 10, digest: Buffer.alloc(32) })).rejects.toThrow();
      expect(await b.stat(k)).toBeNull();
    });

    it('a source offered as a complete file is stored (a local backend may link it) and verified like any other', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conf-'));
      const good = Buffer.from('file-backed blob '.repeat(5000));
      const f = path.join(dir, 'good');
      fs.writeFileSync(f, good);
      const k = keyOf(good);
      expect(await b.put(k, { size: good.length, open: () => [fs.readFileSync(f)], file: f }, expectOf(good))).toBe(true);
      fs.rmSync(f); // the caller removes its temp file: the stored object must not care
      expect((await readAll(await b.get(k)))!.equals(good)).toBe(true);
      // a file whose bytes are not what the caller declared: fails, nothing stored
      const bad = path.join(dir, 'bad');
      fs.writeFileSync(bad, 'tampered');
      const k2 = 'ef'.repeat(32);
      await expect(b.put(k2, { size: 8, open: () => [fs.readFileSync(bad)], file: bad }, { size: 8, digest: hashBuffer(Buffer.from('original')) })).rejects.toMatchObject({ code: 'E_INTEGRITY' });
      expect(await b.stat(k2)).toBeNull();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('refuses keys that are not hex names', async () => {
      const data = Buffer.from('x');
      for (const bad of ['../escape', 'ABCDEF0123456789', 'a/b', '']) {
        await expect(b.put(bad, bufferSource(data), expectOf(data))).rejects.toThrow();
      }
    });

    it('deletes', async () => {
      const data = Buffer.from('to delete');
      const k = keyOf(data);
      await b.put(k, bufferSource(data), expectOf(data));
      await b.delete(k);
      expect(await b.stat(k)).toBeNull();
      expect(await b.get(k)).toBeNull();
      expect(await b.put(k, bufferSource(data), expectOf(data))).toBe(true);
    });

    it('concurrent puts of the same new key: exactly one creates, all succeed, bytes intact', async () => {
      const data = Buffer.alloc(300_000, 0x42);
      const k = keyOf(data);
      const rs = await Promise.all(Array.from({ length: 8 }, () => b.put(k, bufferSource(data), expectOf(data))));
      expect(rs.filter(Boolean).length).toBe(1);
      expect((await readAll(await b.get(k)))!.equals(data)).toBe(true);
    });

    it('an empty object round-trips', async () => {
      const data = Buffer.alloc(0);
      const k = keyOf(data);
      expect(await b.put(k, bufferSource(data), expectOf(data))).toBe(true);
      expect((await readAll(await b.get(k)))!.length).toBe(0);
      expect((await b.stat(k))!.size).toBe(0);
    });
  });
}
