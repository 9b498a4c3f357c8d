import fs from 'node:fs';
import path from 'node:path';
import type { Store } from '../store.js';

export interface StorageReport {
  messages: number;
  users: number;
  /** Sum of message sizes as delivered. */
  logicalBytes: number;
  /** Everything the store occupies: database files plus blob bytes. */
  storedBytes: number;
  databaseBytes: number;
  blobs: number;
  /** Bytes the blobs occupy in the backend (after compression). */
  blobBytes: number;
  /** Canonical (decoded, uncompressed) bytes of the blobs. */
  blobCanonicalBytes: number;
  /** logicalBytes / storedBytes. */
  dedupRatio: number;
  /** logicalBytes - storedBytes. */
  bytesSaved: number;
  splitFallbacks: number;
}

/** Computed from metadata only: never reads a blob. */
export function buildReport(store: Store): StorageReport {
  const db = store.db;
  const m = db.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, count(DISTINCT user) AS users FROM messages').get() as {
    n: number;
    bytes: number;
    users: number;
  };
  const b = db.prepare('SELECT count(*) AS n, coalesce(sum(stored), 0) AS stored, coalesce(sum(size), 0) AS size FROM blobs').get() as {
    n: number;
    stored: number;
    size: number;
  };
  const databaseBytes = dbFilesSize(store.dir);
  const storedBytes = databaseBytes + b.stored;
  const fb = db.prepare("SELECT value FROM counters WHERE name = 'split_fallbacks'").get() as { value: number } | undefined;
  return {
    messages: m.n,
    users: m.users,
    logicalBytes: m.bytes,
    storedBytes,
    databaseBytes,
    blobs: b.n,
    blobBytes: b.stored,
    blobCanonicalBytes: b.size,
    dedupRatio: storedBytes ? m.bytes / storedBytes : 0,
    bytesSaved: m.bytes - storedBytes,
    splitFallbacks: fb?.value ?? 0,
  };
}

export function dbFilesSize(dir: string): number {
  let n = 0;
  for (const f of ['meta.sqlite', 'meta.sqlite-wal', 'meta.sqlite-shm']) {
    try {
      n += fs.statSync(path.join(dir, f)).size;
    } catch {
      /* absent */
    }
  }
  return n;
}

const mb = (n: number): string => `${(n / 1e6).toFixed(2)} MB`;

export function formatReport(r: StorageReport): string {
  const rows: [string, string][] = [
    ['messages', String(r.messages)],
    ['users', String(r.users)],
    ['logical bytes', mb(r.logicalBytes)],
    ['stored bytes', mb(r.storedBytes)],
    ['  database', mb(r.databaseBytes)],
    ['  blobs', `${mb(r.blobBytes)} in ${r.blobs} blobs`],
    ['saved', `${mb(r.bytesSaved)} (${r.dedupRatio.toFixed(2)}x)`],
  ];
  const w = Math.max(...rows.map((x) => x[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
