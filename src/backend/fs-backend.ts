import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';
import { newHasher } from '../util/hash.js';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from './backend.js';
import { realFsOps, type FsOps } from './fs-ops.js';
import { makeDirsSync } from '../util/dirs.js';
import { cleanStaleTemps, tempName } from '../util/temp-files.js';
import { KEY_RE, checkWritten } from './backend.js';

/** Objects up to this size are read with one synchronous read. */
const SMALL_READ = 256 * 1024;

export interface FsBackendOptions {
  /** Only reads will be made (a user who may read the store but not write it): no directory is made or cleaned. */
  readOnly?: boolean;
  /** The calls that change the disk (tests record them to model power loss). */
  ops?: FsOps;
}

/**
 * Objects as files under `root`, fanned out as ab/cd/<key>. A write goes to
 * a temp file in root/.tmp, is counted, hashed and fsynced, then linked into
 * place (link fails if the name exists: create-exclusive) and the directory
 * fsynced. Nothing is ever written at the final path. The fan-out
 * directories are made durable up to the root the first time this process
 * uses them, whoever created them, so no acknowledged object hangs from a
 * directory entry that a power loss could take away.
 */
export class FsBackend implements BlobBackend {
  readonly properties: BackendProperties = { name: 'fs', atomicCreate: true, ranged: true, local: true };
  private readonly tmp: string;
  private readonly ops: FsOps;
  private readonly durableDirs = new Set<string>();

  constructor(readonly root: string, opts: FsBackendOptions = {}) {
    this.ops = opts.ops ?? realFsOps;
    this.tmp = path.join(root, '.tmp');
    if (opts.readOnly) return; // a reader that may not write: nothing made, nothing cleaned
    makeDirsSync(this.tmp);
    cleanStaleTemps(this.tmp);
  }

  get tempDir(): string {
    return this.tmp;
  }

  private pathOf(key: string): string {
    if (!KEY_RE.test(key)) throw new MailcasError('E_USAGE', `invalid blob key ${JSON.stringify(key)}`);
    return path.join(this.root, key.slice(0, 2), key.slice(2, 4), key);
  }

  async put(key: string, src: PutSource, expect: PutExpect, opts: PutOptions = {}): Promise<boolean> {
    const final = this.pathOf(key);
    if (!opts.overwrite && (await exists(final))) return false;
    const tmp = path.join(this.tmp, tempName('w'));
    try {
      if (src.file && this.sameDevice(src.file)) await this.adoptInto(tmp, key, src.file, expect);
      else await this.writeInto(tmp, key, src, expect);
      return await this.publish(tmp, final, !!opts.overwrite);
    } catch (e) {
      throw wrap(e, `storing blob ${key}`);
    } finally {
      await this.ops.unlink(tmp).catch(() => {});
    }
  }

  /** Writes the source to tmp, counting and hashing what is written; fsynced when it returns. */
  private async writeInto(tmp: string, key: string, src: PutSource, expect: PutExpect): Promise<void> {
    const fh = await this.ops.create(tmp);
    try {
      const h = newHasher();
      let n = 0;
      for await (const chunk of src.open()) {
        n += chunk.length;
        if (n > expect.size) break;
        h.update(chunk);
        await this.ops.write(fh, chunk, tmp);
      }
      checkWritten(key, n, h.digest(), expect);
      await this.ops.fsync(fh, tmp);
    } finally {
      await this.ops.close(fh);
    }
  }

  /**
   * Links a caller's complete file as tmp (no copy; our own name first, so the
   * caller removing theirs cannot race the checks), then reads it back to
   * verify it and fsyncs it.
   */
  private async adoptInto(tmp: string, key: string, file: string, expect: PutExpect): Promise<void> {
    await this.ops.link(file, tmp);
    const fh = await this.ops.openRead(tmp);
    try {
      const h = newHasher();
      let n = 0;
      const b = Buffer.allocUnsafe(1024 * 1024);
      for (;;) {
        const { bytesRead } = await fh.read(b, 0, b.length, n);
        if (bytesRead === 0) break;
        h.update(b.subarray(0, bytesRead));
        n += bytesRead;
      }
      checkWritten(key, n, h.digest(), expect);
      await this.ops.fsync(fh, tmp);
    } finally {
      await this.ops.close(fh);
    }
  }

  /**
   * Gives a verified, durable tmp file its final name (link: create-exclusive;
   * rename: atomic replacement when healing) and makes the name durable.
   */
  private async publish(tmp: string, final: string, overwrite: boolean): Promise<boolean> {
    const dir = path.dirname(final);
    await this.durableDir(dir);
    if (overwrite) {
      await this.ops.rename(tmp, final);
    } else {
      try {
        await this.ops.link(tmp, final);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        return false;
      }
    }
    await this.ops.fsyncDir(dir);
    return true;
  }

  /** Creates ab/ and ab/cd/ when missing and syncs the entries that hold them (root, ab/), once per process. */
  private async durableDir(dir: string): Promise<void> {
    if (this.durableDirs.has(dir)) return;
    const mid = path.dirname(dir);
    for (const d of [mid, dir]) {
      try {
        await this.ops.mkdir(d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    await this.ops.fsyncDir(this.root);
    await this.ops.fsyncDir(mid);
    this.durableDirs.add(dir);
  }

  private device: number | null = null;
  private sameDevice(file: string): boolean {
    try {
      this.device ??= fs.statSync(this.root).dev;
      return fs.statSync(file).dev === this.device;
    } catch {
      return false;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    const p = this.pathOf(key);
    let fd: number;
    try {
      // small objects (the common case) are read in one synchronous call from the page cache:
      // far cheaper than a stream's several thread-pool round trips
      fd = fs.openSync(p, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw wrap(e, `reading blob ${key}`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.min(range?.start ?? 0, size);
      const end = Math.max(start, Math.min(range?.end ?? size, size));
      if (end - start <= SMALL_READ) {
        const b = Buffer.allocUnsafe(end - start);
        let got = 0;
        while (got < b.length) {
          const n = fs.readSync(fd, b, got, b.length - got, start + got);
          if (n === 0) break;
          got += n;
        }
        fs.closeSync(fd);
        return Readable.from(got ? [b.subarray(0, got)] : []);
      }
      return fs.createReadStream('', { fd, start, end: end - 1, highWaterMark: 256 * 1024 });
    } catch (e) {
      fs.closeSync(fd);
      throw wrap(e, `reading blob ${key}`);
    }
  }

  readWhole(key: string, max: number): Buffer | null | undefined {
    let fd: number;
    try {
      fd = fs.openSync(this.pathOf(key), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw wrap(e, `reading blob ${key}`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size > max) return undefined;
      const b = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = fs.readSync(fd, b, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return got === size ? b : b.subarray(0, got);
    } catch (e) {
      throw wrap(e, `reading blob ${key}`);
    } finally {
      fs.closeSync(fd);
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const st = await fsp.stat(this.pathOf(key));
      return { key, size: st.size, mtimeMs: st.mtimeMs };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw wrap(e, `stat blob ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.pathOf(key);
    try {
      await this.ops.unlink(p);
      await this.ops.fsyncDir(path.dirname(p));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw wrap(e, `deleting blob ${key}`);
    }
  }

  async *list(): AsyncIterable<ObjectInfo> {
    const lvl1 = await readdirSafe(this.root);
    for (const a of lvl1) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await readdirSafe(path.join(this.root, a))) {
        if (!/^[0-9a-f]{2}$/.test(b)) continue;
        const dir = path.join(this.root, a, b);
        for (const name of await readdirSafe(dir)) {
          if (!KEY_RE.test(name)) continue;
          try {
            const st = await fsp.stat(path.join(dir, name));
            yield { key: name, size: st.size, mtimeMs: st.mtimeMs };
          } catch {
            /* deleted meanwhile */
          }
        }
      }
    }
  }

  async close(): Promise<void> {}
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

async function readdirSafe(d: string): Promise<string[]> {
  try {
    return await fsp.readdir(d);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw wrap(e, `listing ${d}`);
  }
}

function wrap(e: unknown, what: string): MailcasError {
  if (e instanceof MailcasError) return e;
  const err = e as NodeJS.ErrnoException;
  return new MailcasError('E_BACKEND', `${what}: ${err.code ?? ''} ${err.message}`.trim(), { cause: e, transient: true });
}
