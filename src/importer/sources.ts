import fs from 'node:fs';
import path from 'node:path';
import { MailcasError } from '../errors.js';
import { scanMbox, sniffMbox } from './mbox.js';
import type { FileInput } from '../split/spool.js';

export type ImportFormat = 'auto' | 'eml' | 'maildir' | 'mbox';

/** One message to import: where it came from and how to read its bytes. */
export interface MessageSource {
  /** "<path>" or "<path>#<n>" for the n-th message of an mbox. */
  label: string;
  size: number;
  /** The message bytes, read in place. */
  input: FileInput;
  /** Set when this entry cannot be read (an unreadable file or directory): counted as a failure, the rest goes on. */
  error?: MailcasError;
  /** Mailbox from the source's own structure (a Maildir++ subfolder); absent: the caller's --mailbox. */
  mailbox?: string;
}

/**
 * Checks every PATH before anything is imported: each must exist, be
 * readable, and suit the format. A bad argument fails the whole command at
 * once (E_NOT_FOUND / E_USAGE), never after part of another was imported.
 */
export function checkPaths(paths: string[], format: ImportFormat): void {
  for (const p of paths) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new MailcasError('E_NOT_FOUND', `no such file or directory: ${p}`);
      throw new MailcasError('E_USAGE', `cannot read ${p}: ${code ?? (e as Error).message}`);
    }
    try {
      fs.accessSync(p, fs.constants.R_OK | (st.isDirectory() ? fs.constants.X_OK : 0));
    } catch {
      throw new MailcasError('E_USAGE', `cannot read ${p}: permission denied`);
    }
    if (st.isDirectory()) {
      if (format === 'mbox') throw new MailcasError('E_USAGE', `${p} is a directory, not an mbox file`);
    } else if (st.isFile()) {
      if (format === 'maildir') throw new MailcasError('E_USAGE', `${p} is a file, not a Maildir`);
    } else {
      throw new MailcasError('E_USAGE', `${p} is neither a file nor a directory`);
    }
  }
}

/**
 * Expands import PATHs into messages. A file is one message (or, when
 * sniffed or told, an mbox); a directory is a Maildir when it has cur/ or
 * new/, else a tree of single-message files, stored exactly as they are
 * whatever their first line. Directories are followed through symlinks
 * but never twice (device and inode), so a symlink loop imports each
 * message once. Call checkPaths first.
 */
export function* expandSources(paths: string[], format: ImportFormat): Generator<MessageSource> {
  const seen = new Set<string>();
  for (const p of paths) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      yield failure(p, e);
      continue;
    }
    if (st.isDirectory()) {
      if (!firstVisit(seen, st)) continue;
      const isMaildir = format === 'maildir' || (format === 'auto' && (isDir(path.join(p, 'cur')) || isDir(path.join(p, 'new'))));
      if (isMaildir) {
        yield* maildirFolder(p, undefined);
        // Maildir++ subfolders (.Sent, .Archive.2024, ...) become mailboxes of their own
        for (const e of readdirSorted(p)) {
          if (!e.name.startsWith('.') || e.name === '.' || e.name === '..') continue;
          const sub = path.join(p, e.name);
          if (isDir(sub) && (isDir(path.join(sub, 'cur')) || isDir(path.join(sub, 'new')))) yield* maildirFolder(sub, e.name.slice(1).replace(/\./g, '/'));
        }
      } else {
        yield* walk(p, seen);
      }
    } else if (st.isFile()) {
      const mbox = format === 'mbox' || (format === 'auto' && sniffMbox(p));
      if (mbox) {
        for (const m of scanMbox(p)) {
          yield {
            label: `${p}#${m.index}`,
            size: m.end - m.start,
            input: { path: p, start: m.start, end: m.end },
          };
        }
      } else {
        yield fileSource(p, st.size);
      }
    }
  }
}

function firstVisit(seen: Set<string>, st: fs.Stats): boolean {
  const id = `${st.dev}:${st.ino}`;
  if (seen.has(id)) return false;
  seen.add(id);
  return true;
}

function failure(p: string, e: unknown): MessageSource {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'ELOOP' ? 'too many levels of symbolic links' : (code ?? (e as Error).message);
  return { label: p, size: 0, input: { path: p }, error: new MailcasError('E_SOURCE', `cannot read ${p}: ${why}`) };
}

/** What a directory entry that is neither a file nor a directory is (never opened: a FIFO would block, a device never end). */
function notAFile(p: string, st: fs.Stats): MessageSource {
  const kind = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : 'not a regular file';
  return { label: p, size: 0, input: { path: p }, error: new MailcasError('E_SOURCE', `${p} is ${kind}, not a message file: skipped`) };
}

/** Directory entries sorted by name; an unreadable directory has none (its failure is yielded by the caller). */
function readdirSorted(dir: string): fs.Dirent[] {
  return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function* maildirFolder(dir: string, mailbox: string | undefined): Generator<MessageSource> {
  for (const sub of ['new', 'cur']) {
    const d = path.join(dir, sub);
    if (!isDir(d)) continue;
    let names: string[];
    try {
      names = fs.readdirSync(d).sort();
    } catch (e) {
      yield failure(d, e);
      continue;
    }
    for (const f of names) {
      if (f.startsWith('.')) continue;
      const fp = path.join(d, f);
      let st: fs.Stats;
      try {
        st = fs.statSync(fp);
      } catch (e) {
        yield failure(fp, e);
        continue;
      }
      if (st.isFile()) yield { ...fileSource(fp, st.size), ...(mailbox ? { mailbox } : {}) };
      else if (!st.isDirectory()) yield notAFile(fp, st);
    }
  }
}

function fileSource(p: string, size: number): MessageSource {
  return { label: p, size, input: { path: p } };
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function* walk(dir: string, seen: Set<string>): Generator<MessageSource> {
  let entries: fs.Dirent[];
  try {
    entries = readdirSorted(dir);
  } catch (e) {
    yield failure(dir, e);
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    let st: fs.Stats;
    try {
      st = fs.statSync(p); // follows symlinks
    } catch (err) {
      yield failure(p, err);
      continue;
    }
    if (st.isFile()) yield fileSource(p, st.size);
    else if (st.isDirectory()) {
      if (firstVisit(seen, st)) yield* walk(p, seen);
    } else yield notAFile(p, st);
  }
}

/** Total bytes of the sources (for progress), without reading them. */
export function totalSize(paths: string[], format: ImportFormat): { messages: number; bytes: number } {
  let messages = 0;
  let bytes = 0;
  for (const s of expandSources(paths, format)) {
    messages++;
    bytes += s.size;
  }
  return { messages, bytes };
}
