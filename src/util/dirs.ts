import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { MailcasError } from '../errors.js';

/**
 * Creates a directory and its missing parents, one level at a time, and
 * makes each new entry durable (fsync of the parent that holds it).
 * Node's recursive mkdir spins forever on some paths (/proc/x); this fails
 * at once with the path that could not be made.
 */
export function makeDirsSync(dir: string): void {
  const missing: string[] = [];
  for (let p = path.resolve(dir); ; ) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw dirError(p, e);
    }
    if (st) {
      if (!st.isDirectory()) throw new MailcasError('E_STORE', `${p} exists and is not a directory`);
      break;
    }
    missing.push(p);
    const parent = path.dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (const m of missing.reverse()) {
    try {
      fs.mkdirSync(m, 0o755);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(m).isDirectory()) continue;
      throw dirError(m, e);
    }
    fsyncDirSync(path.dirname(m));
  }
}

function dirError(p: string, e: unknown): MailcasError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ENOENT' ? 'it cannot be created there' : code === 'ENOTDIR' ? 'a parent is not a directory' : (code ?? (e as Error).message);
  return new MailcasError('E_STORE', `cannot create directory ${p}: ${why}`, { cause: e });
}

export function fsyncDirSync(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return; // a directory we cannot open for reading (e.g. not ours) cannot be synced by us either
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    // some filesystems refuse fsync on directories (EINVAL): their metadata is synchronous or beyond our reach
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    await fh.close();
  }
}
