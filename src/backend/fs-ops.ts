import fsp from 'node:fs/promises';
import { fsyncDir } from '../util/dirs.js';

/**
 * Every call by which the filesystem backend changes what is on disk, and
 * the fsyncs that make it durable. The backend makes no other mutating
 * call, so a test can put a recorder between the two and replay only what
 * was synced: the power-loss model (test/backend/power-loss.test.ts).
 */
export interface FsOps {
  /** Creates a new file exclusively (fails with EEXIST) for writing. */
  create(path: string): Promise<fsp.FileHandle>;
  /** Opens an existing file to read it and sync it. */
  openRead(path: string): Promise<fsp.FileHandle>;
  write(fh: fsp.FileHandle, b: Buffer, path: string): Promise<void>;
  fsync(fh: fsp.FileHandle, path: string): Promise<void>;
  close(fh: fsp.FileHandle): Promise<void>;
  link(existing: string, name: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Creates one directory (not its parents); EEXIST when it is there. */
  mkdir(path: string): Promise<void>;
  fsyncDir(path: string): Promise<void>;
}

export const realFsOps: FsOps = {
  create: (p) => fsp.open(p, 'wx', 0o600),
  openRead: (p) => fsp.open(p, 'r'),
  async write(fh, b) {
    let off = 0;
    while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
  },
  fsync: (fh) => fh.sync(),
  close: (fh) => fh.close(),
  link: (a, b) => fsp.link(a, b),
  rename: (a, b) => fsp.rename(a, b),
  unlink: (p) => fsp.unlink(p),
  async mkdir(p) {
    await fsp.mkdir(p, 0o755);
  },
  fsyncDir,
};
