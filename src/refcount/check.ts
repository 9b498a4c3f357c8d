import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoreContext } from '../store-context.js';
import type { BlobBackend } from '../backend/backend.js';
import { SQLITE_BUSY_TIMEOUT_MS } from '../limits.js';
import { blobRefs } from '../layout/layout.js';
import { unpackMessageLayout, type LayoutColumns } from '../layout/packed-layout.js';
import { inWriteTxn } from './gc.js';
import { BlobCodec } from '../cas/blob-store.js';

export interface CheckOptions {
  /** Fix what can be fixed: reference counts, rows of blobs that exist, orphan objects. */
  repair?: boolean;
  /** Also read every blob and verify its hash. */
  deep?: boolean;
}

export interface CheckReport {
  /** True when every committed message can be reassembled and every count is right. */
  consistent: boolean;
  messages: number;
  blobs: number;
  objects: number;
  /** Stored count differs from the recount over all messages. */
  drift: { hash: string; stored: number; actual: number }[];
  /** Referenced by a message but no blob row. */
  missingRows: string[];
  /** Referenced by a message, but the object is not in the backend: data loss. */
  missingBlobs: string[];
  /** Objects with no row and no lease: unexplained garbage. */
  orphans: string[];
  /** Objects with no row but a lease: written by an ingest in flight or one that crashed before committing (gc reclaims them). */
  uncommitted: string[];
  /** Rows with no references (reclaimable by gc). */
  unreferenced: number;
  /** Messages whose layout cannot be decoded. */
  corruptMessages: string[];
  /** Blobs whose bytes do not match their hash (deep only). */
  corruptBlobs: string[];
  repaired: { refcounts: number; rowsCreated: number; orphansDeleted: number; rowsDropped: number } | null;
}

/**
 * Recounts references from the messages table, compares them with the
 * stored counts and with the backend listing, and reports (with `repair`,
 * fixes) drift, orphans and missing blobs. A plain check reads a snapshot
 * and lets ingest go on; a repair holds the write lock.
 */
export async function runCheck(ctx: StoreContext, opts: CheckOptions = {}): Promise<CheckReport> {
  const backend = ctx.blobStore.backend;
  const rep: CheckReport = {
    consistent: true,
    messages: 0,
    blobs: 0,
    objects: 0,
    drift: [],
    missingRows: [],
    missingBlobs: [],
    orphans: [],
    uncommitted: [],
    unreferenced: 0,
    corruptMessages: [],
    corruptBlobs: [],
    repaired: null,
  };
  const recreated = new Set<string>();
  const examine = async (db: Database.Database, listed: Map<string, number> | null): Promise<void> => {
    const actual = new Map<string, number>();
    for (const r of db.prepare('SELECT id, codec, dict, layout, inline, inline_codec FROM messages').iterate() as IterableIterator<
      LayoutColumns & { id: number }
    >) {
      rep.messages++;
      try {
        for (const h of blobRefs(unpackMessageLayout(r, (id) => ctx.dictionary(id)))) {
          const k = h.toString('hex');
          actual.set(k, (actual.get(k) ?? 0) + 1);
        }
      } catch {
        rep.corruptMessages.push(String(r.id));
      }
    }
    const rows = new Map<string, { refs: number; codec: number; size: number; stored: number; domain: string }>();
    for (const r of db.prepare('SELECT hash, refs, codec, size, stored, domain FROM blobs').iterate() as IterableIterator<{
      hash: Buffer;
      refs: number;
      codec: number;
      size: number;
      stored: number;
      domain: string;
    }>) {
      rows.set(r.hash.toString('hex'), r);
    }
    rep.blobs = rows.size;
    const objects = listed ?? (await listObjects(backend));
    rep.objects = objects.size;

    for (const [k, row] of rows) {
      const a = actual.get(k) ?? 0;
      if (row.refs !== a) rep.drift.push({ hash: k, stored: row.refs, actual: a });
      if (a === 0) rep.unreferenced++;
      if (a > 0 && !objects.has(k)) rep.missingBlobs.push(k);
    }
    for (const [k] of actual) {
      if (!rows.has(k)) {
        rep.missingRows.push(k);
        if (!objects.has(k)) rep.missingBlobs.push(k);
      }
    }
    const anyLease = db.prepare('SELECT 1 FROM leases WHERE hash = ?');
    for (const [k] of objects) {
      if (rows.has(k)) continue;
      if (anyLease.get(Buffer.from(k, 'hex'))) rep.uncommitted.push(k);
      else if (!actual.has(k)) rep.orphans.push(k);
    }
    if (opts.deep) {
      for (const [k, row] of rows) {
        if (!objects.has(k)) continue;
        if (!(await ctx.blobStore.readsBackAs(Buffer.from(k, 'hex'), row.codec, row.size, ctx.domainKey(row.domain)))) rep.corruptBlobs.push(k);
      }
    }

    if (opts.repair) {
      const fixed = { refcounts: 0, rowsCreated: 0, orphansDeleted: 0, rowsDropped: 0 };
      recreated.clear();
      const now = Date.now();
      const setRefs = db.prepare('UPDATE blobs SET refs = ?, zero_since = CASE WHEN ? = 0 THEN coalesce(zero_since, ?) ELSE NULL END WHERE hash = ?');
      for (const d of rep.drift) {
        setRefs.run(d.actual, d.actual, now, Buffer.from(d.hash, 'hex'));
        fixed.refcounts++;
      }
      // a referenced blob whose row is missing but whose object exists: recreate the row
      const ins = db.prepare(
        'INSERT INTO blobs(hash, domain, size, stored, codec, refs, created, zero_since, content_type) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)',
      );
      const sizeOf = db.prepare('SELECT size FROM parts WHERE hash = ? LIMIT 1');
      for (const k of rep.missingRows) {
        if (!objects.has(k)) continue;
        const h = Buffer.from(k, 'hex');
        const p = sizeOf.get(h) as { size: number } | undefined;
        if (!p) continue;
        const found = await detectCodec(ctx, h, p.size);
        if (!found) continue;
        ins.run(h, found.domain, p.size, objects.get(k)!, found.codec, actual.get(k)!, now);
        fixed.rowsCreated++;
        recreated.add(k);
      }
      for (const k of rep.orphans) {
        await backend.delete(k);
        fixed.orphansDeleted++;
      }
      // rows of unreferenced blobs whose object is gone: nothing to keep
      const drop = db.prepare('DELETE FROM blobs WHERE hash = ? AND refs = 0');
      for (const [k] of rows) {
        if ((actual.get(k) ?? 0) === 0 && !objects.has(k)) fixed.rowsDropped += drop.run(Buffer.from(k, 'hex')).changes;
      }
      rep.repaired = fixed;
    }
  };

  if (opts.repair) {
    // repairing writes: hold the write lock so no commit interleaves with the recount
    await inWriteTxn(ctx, false, () => examine(ctx.db, null));
  } else {
    // a plain check does not block writers: list the backend first, then read one snapshot of the
    // metadata on a read-only connection of its own (a blob's lease is committed before its object
    // is written, so every listed object has a row or a lease in the later snapshot) ...
    const listed = await listObjects(backend);
    const reader = new Database(path.join(ctx.dir, 'meta.sqlite'), { readonly: true, fileMustExist: true });
    try {
      reader.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      reader.exec('BEGIN');
      await examine(reader, listed);
      reader.exec('COMMIT');
    } finally {
      reader.close();
    }
    // ... and close the window between the two: gc may have deleted a listed object since, a commit
    // may have added one that the listing missed
    rep.orphans = await filterAsync(rep.orphans, async (k) => (await backend.stat(k)) !== null);
    rep.uncommitted = await filterAsync(rep.uncommitted, async (k) => (await backend.stat(k)) !== null);
    rep.missingBlobs = await filterAsync(rep.missingBlobs, async (k) => (await backend.stat(k)) === null);
    rep.missingRows = rep.missingRows.filter((k) => rep.missingBlobs.includes(k) || listed.has(k));
  }
  const repairedAll = rep.repaired !== null;
  const unfixedRows = rep.missingRows.filter((k) => !recreated.has(k));
  rep.consistent =
    (repairedAll ? true : rep.drift.length === 0 && rep.orphans.length === 0) &&
    unfixedRows.length === 0 &&
    rep.missingBlobs.length === 0 &&
    rep.corruptMessages.length === 0 &&
    rep.corruptBlobs.length === 0;
  return rep;
}

async function listObjects(backend: BlobBackend): Promise<Map<string, number>> {
  const objects = new Map<string, number>();
  for await (const o of backend.list()) objects.set(o.key, o.size);
  return objects;
}

async function filterAsync<T>(xs: T[], keep: (x: T) => Promise<boolean>): Promise<T[]> {
  const out: T[] = [];
  for (const x of xs) if (await keep(x)) out.push(x);
  return out;
}

/** Finds the codec (and dedup domain) under which an object reads back as the blob its name says. */
async function detectCodec(ctx: StoreContext, hash: Buffer, size: number): Promise<{ codec: number; domain: string } | null> {
  const domains = [''];
  for (const r of ctx.db.prepare('SELECT DISTINCT domain FROM blobs').all() as { domain: string }[]) if (r.domain) domains.push(r.domain);
  for (const codec of [BlobCodec.None, BlobCodec.Deflate]) {
    for (const domain of domains) {
      if (await ctx.blobStore.readsBackAs(hash, codec, size, ctx.domainKey(domain))) return { codec, domain };
    }
  }
  return null;
}
