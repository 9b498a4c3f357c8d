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
  /** Mailbox from the source's own structure (a Maildir++ subfolder); absent: the caller's --mailbox. */
  mailbox?: string;
}

/**
 * Expands import PATHs into messages. A file is one message (or, when
 * sniffed or told, an mbox); a directory is a Maildir when it has cur/ or
 * new/, else a tree of single-message files, stored exactly as they are
 * whatever their first line.
 */
export function* expandSources(paths: string[], format: ImportFormat): Generator<MessageSource> {
  for (const p of paths) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new MailcasError('E_USAGE', `no such file or directory: ${p}`);
    }
    if (st.isDirectory()) {
      if (format === 'mbox') throw new MailcasError('E_USAGE', `${p} is a directory, not an mbox file`);
      const isMaildir = format === 'maildir' || (format === 'auto' && (isDir(path.join(p, 'cur')) || isDir(path.join(p, 'new'))));
      if (isMaildir) {
        yield* maildirFolder(p, undefined);
        // Maildir++ subfolders (.Sent, .Archive.2024, ...) become mailboxes of their own
        for (const e of fs.readdirSync(p, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
          if (!e.name.startsWith('.') || e.name === '.' || e.name === '..') continue;
          const sub = path.join(p, e.name);
          if (isDir(sub) && (isDir(path.join(sub, 'cur')) || isDir(path.join(sub, 'new')))) yield* maildirFolder(sub, e.name.slice(1).replace(/\./g, '/'));
        }
      } else {
        for (const f of walk(p)) yield fileSource(f.path, f.size);
      }
    } else if (st.isFile()) {
      if (format === 'maildir') throw new MailcasError('E_USAGE', `${p} is a file, not a Maildir`);
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

function* maildirFolder(dir: string, mailbox: string | undefined): Generator<MessageSource> {
  for (const sub of ['new', 'cur']) {
    const d = path.join(dir, sub);
    if (!isDir(d)) continue;
    for (const f of fs.readdirSync(d).sort()) {
      if (f.startsWith('.')) continue;
      const fp = path.join(d, f);
      const s = fs.statSync(fp);
      if (s.isFile()) yield { ...fileSource(fp, s.size), ...(mailbox ? { mailbox } : {}) };
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

function* walk(dir: string): Generator<{ path: string; size: number }> {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else {
      const s = fs.statSync(p); // follows symlinks
      if (s.isFile()) yield { path: p, size: s.size };
      else if (s.isDirectory()) yield* walk(p);
    }
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
