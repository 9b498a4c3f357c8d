import path from 'node:path';
import type { BlobIndex } from '../blob-index/blob-index.js';
import type { BlobStore } from '../cas/blob-store.js';
import type { SharedBucket } from '../backend/shared-bucket.js';
import { Messages } from '../meta/messages.js';

/** What check uses of its store. */
export interface CheckDeps {
  /** The store's directory (check reads one snapshot on a read-only connection of its own). */
  readonly dir: string;
  readonly index: BlobIndex;
  readonly blobStore: BlobStore;
  readonly shared: SharedBucket | null;
  readonly messages: Messages;
  domainKey(domain: string): Buffer | null;
  dictionary(id: number): Buffer | null;
}
import type { BlobBackend } from '../backend/backend.js';
import { blobRefs } from '../layout/layout.js';
import { unpackMessageLayout, type LayoutColumns } from '../layout/packed-layout.js';
import { ALL_BLOB_CODECS, Tier, objectKey } from '../cas/blob-store.js';
import { counter, openDb, type Db } from '../meta/db.js';
import { BlobIndexView } from '../blob-index/index-view.js';
import { PACK_NAME_HEX } from '../blob-index/packs.js';
import { placeOf } from '../blob-index/refcounts.js';
import { Leases } from '../blob-index/leases.js';
import { GC_BATCH } from '../limits.js';
import { GENERATION } from '../meta/schema.js';

export interface CheckOptions {
  /** Fix what can be fixed: reference counts, rows of blobs that exist, orphan objects, rows whose object is gone. */
  repair?: boolean;
  /** Also read every blob and verify it against its name. */
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
  /** Packs whose live-byte figure (what gc repacks by) differs from the stored bytes of the blobs in them. */
  packDrift: { pack: string; live: number; actual: number }[];
  /** Referenced by a message but no blob row. */
  missingRows: string[];
  /** Referenced by a message, but the object is not in the backend: data loss. */
  missingBlobs: string[];
  /** Objects with no row and no lease: unexplained garbage (in the primary backend; for a tiered store, the hot tier). */
  orphans: string[];
  /** The same in the cold tier: blob objects and pack objects nothing points at. */
  coldOrphans: string[];
  /** Hot copies of blobs whose row says they are in the cold tier: left by a tier or flush that stopped between switching a blob and deleting its hot copy. Expected after a crash, not an inconsistency: gc (and repair) removes them. */
  staleHotCopies: string[];
  /** Cold objects of blobs whose row says they are elsewhere now: brought back to the hot tier by a new ingest of the same content after their count fell to zero. Not an inconsistency: gc (and repair) removes them. */
  staleColdCopies: string[];
  /**
   * Node of a cluster: referenced blobs in the shared bucket for which this
   * node has no reference marker on record or (with --deep, which lists
   * them) in the bucket: the marker is what keeps other nodes' collectors
   * from deleting them, so this is an inconsistency; --repair writes it again.
   */
  missingMarkers: string[];
  /** Node of a cluster: markers on record that no reference or ingest needs any more (gc deletes them). */
  unneededMarkers: number;
  /** Referenced blobs still only in the hot tier of a tiered store (the write-behind backlog), and their stored bytes. */
  pendingUploads: number;
  pendingBytes: number;
  /** Objects with no row but a lease: written by an ingest in flight or one that crashed before committing (gc reclaims them). */
  uncommitted: string[];
  /** Rows with no references (reclaimable by gc). */
  unreferenced: number;
  /** Unreferenced rows whose object is gone (a gc that stopped between the two): harmless, vouch for nothing; repair and gc drop them. */
  danglingRows: string[];
  /** Messages whose layout cannot be decoded (their references are counted from the parts table). */
  corruptMessages: string[];
  /** Blobs whose object does not read back as its name says: found by --deep, or marked by an earlier read. */
  corruptBlobs: string[];
  /** Messages that reference a missing or corrupt blob: they cannot be fetched until the content is ingested again or restored. */
  damagedMessages: string[];
  repaired: { refcounts: number; rowsCreated: number; orphansDeleted: number; rowsDropped: number; packs: number; markers: number } | null;
  /** Why a repair did less than asked (e.g. undecodable messages: no count lowered, nothing deleted). */
  repairNote?: string;
}

interface Row {
  refs: number;
  codec: number;
  size: number;
  domain: string;
  corrupt: number;
  tier: number;
  pack_name: string | null;
  pack_offset: number | null;
  frame_offset: number | null;
  pack_length: number | null;
  stored: number;
  instance: string | null;
}

/** One listing of each tier, taken before the metadata snapshot. */
interface Listing {
  hot: Map<string, number>;
  cold: Map<string, number> | null;
  /** Instance objects in the bucket a cluster's nodes share (node stores). */
  shared: Map<string, number> | null;
}

/** Is a row's object (or pack) in the listing where the row says it is? */
function present(l: Listing, k: string, row: Pick<Row, 'tier' | 'pack_name' | 'instance'>): boolean {
  if (row.tier === 0) return l.hot.has(k);
  if (row.tier === Tier.Shared) return !!l.shared?.has(k + row.instance);
  if (!l.cold) return false;
  return l.cold.has(row.pack_name ?? k);
}

/** What one snapshot of the metadata says, next to a listing of the backend. */
interface Findings {
  generation: number;
  actual: Map<string, number>;
  rows: Map<string, Row>;
}

/**
 * Recounts references from the messages, compares them with the stored
 * counts and with the backend listing, and reports (with `repair`, fixes)
 * drift, orphans and missing blobs.
 *
 * Neither a check nor a repair holds the write lock while it reads: the
 * backend is listed first, then one snapshot of the metadata is read on a
 * read-only connection of its own (a blob's lease is committed before its
 * object is written, so every listed object has a row or a lease in the
 * later snapshot); --deep reads the blobs with no lock at all. A repair
 * then applies its fixes in short write transactions, each re-checked
 * inside: counts only if no commit or expunge happened since the snapshot
 * (the generation counter; else it looks again), orphans only if they
 * still have no row and no lease.
 */
export async function runCheck(ctx: CheckDeps, opts: CheckOptions = {}): Promise<CheckReport> {
  for (let attempt = 0; ; attempt++) {
    const listed: Listing = {
      hot: await listObjects(ctx.blobStore.backend),
      cold: ctx.blobStore.cold ? await listObjects(ctx.blobStore.cold) : null,
      shared: ctx.blobStore.shared ? await listObjects(ctx.blobStore.shared) : null,
    };
    const rep = emptyReport();
    const found = snapshot(ctx, rep, listed);
    if (opts.deep) await deepScan(ctx, rep, found, listed);
    if (opts.deep && ctx.shared) await markersInBucket(ctx, rep, found);
    await closeWindow(ctx, rep, listed, found);
    damaged(ctx, rep);
    if (opts.repair) {
      const done = await repair(ctx, rep, found, listed);
      if (!done && attempt < 5) continue; // mail moved on since the snapshot: look again
      if (!done) rep.repairNote = 'the store kept changing during the repair: counts were left as they are; run it again';
    }
    const repaired = rep.repaired !== null && !rep.repairNote;
    rep.consistent =
      (repaired || (rep.drift.length === 0 && rep.orphans.length === 0 && rep.packDrift.length === 0)) &&
      rep.missingRows.length === 0 &&
      rep.missingBlobs.length === 0 &&
      rep.missingMarkers.length === 0 &&
      rep.corruptMessages.length === 0 &&
      rep.corruptBlobs.length === 0;
    return rep;
  }
}

function emptyReport(): CheckReport {
  return {
    consistent: true,
    messages: 0,
    blobs: 0,
    objects: 0,
    drift: [],
    packDrift: [],
    missingRows: [],
    missingBlobs: [],
    orphans: [],
    coldOrphans: [],
    staleHotCopies: [],
    staleColdCopies: [],
    missingMarkers: [],
    unneededMarkers: 0,
    pendingUploads: 0,
    pendingBytes: 0,
    uncommitted: [],
    unreferenced: 0,
    danglingRows: [],
    corruptMessages: [],
    corruptBlobs: [],
    damagedMessages: [],
    repaired: null,
  };
}

/** Reads one snapshot of the metadata on a read-only connection and compares it with the listing. */
function snapshot(ctx: CheckDeps, rep: CheckReport, objects: Listing): Findings {
  const reader = openDb(path.join(ctx.dir, 'meta.sqlite'), { readonly: true });
  try {
    reader.exec('BEGIN');
    const f = examine(ctx, reader, rep, objects);
    rep.packDrift = new BlobIndexView(reader).packDrift();
    reader.exec('COMMIT');
    return f;
  } finally {
    reader.close();
  }
}

function examine(ctx: CheckDeps, db: Db, rep: CheckReport, objects: Listing): Findings {
  const generation = counter(db, GENERATION);
  const actual = new Map<string, number>();
  const add = (k: string): void => void actual.set(k, (actual.get(k) ?? 0) + 1);
  const messages = new Messages(db);
  for (const r of messages.layouts()) {
    rep.messages++;
    let refs: Buffer[];
    try {
      refs = blobRefs(unpackMessageLayout(r, (id) => ctx.dictionary(id)));
    } catch {
      rep.corruptMessages.push(String(r.id));
      // its references still count: the parts table records them without needing the layout
      refs = messages.partRefs(r.id);
    }
    for (const h of refs) add(h.toString('hex'));
  }
  const view = new BlobIndexView(db);
  const rows = new Map<string, Row>();
  for (const r of view.rows()) {
    const { hash, ...row } = r;
    rows.set(hash.toString('hex'), row);
  }
  rep.blobs = rows.size;
  rep.objects = objects.hot.size + (objects.cold?.size ?? 0);
  if (objects.shared) {
    // every referenced instance has a marker of this node on record (written before the reference committed)
    for (const [k, row] of rows) if (row.tier === Tier.Shared && row.refs > 0 && !view.marked(Buffer.from(k, 'hex'), row.instance!)) rep.missingMarkers.push(k);
    rep.unneededMarkers = view.unneededMarkers();
  }
  for (const [k, row] of rows) {
    const a = actual.get(k) ?? 0;
    const here = present(objects, k, row);
    if (row.refs !== a) rep.drift.push({ hash: k, stored: row.refs, actual: a });
    if (a === 0) rep.unreferenced++;
    if (a > 0 && !here) rep.missingBlobs.push(k);
    if (a === 0 && !here) rep.danglingRows.push(k);
    if (row.corrupt && here) rep.corruptBlobs.push(k);
    if (objects.cold && row.tier === 0 && a > 0) {
      rep.pendingUploads++;
      rep.pendingBytes += row.stored;
    }
  }
  for (const [k] of actual) {
    if (!rows.has(k)) {
      rep.missingRows.push(k);
      if (!objects.hot.has(k)) rep.missingBlobs.push(k);
    }
  }
  const anyLease = { get: (h: Buffer) => view.leased(h) };
  for (const [k] of objects.hot) {
    const row = rows.get(k);
    if (row && row.tier === 0) continue;
    if (anyLease.get(Buffer.from(k, 'hex'))) rep.uncommitted.push(k);
    else if (row) rep.staleHotCopies.push(k); // the row says cold: a hot copy tier had not deleted yet
    else if (!actual.has(k)) rep.orphans.push(k);
  }
  if (objects.cold) {
    const packs = view.packNames();
    for (const [k] of objects.cold) {
      if (k.length === PACK_NAME_HEX) {
        if (!packs.has(k)) rep.coldOrphans.push(k);
        continue;
      }
      const row = rows.get(k);
      if (row && row.tier === 1 && !row.pack_name) continue;
      if (anyLease.get(Buffer.from(k, 'hex'))) rep.uncommitted.push(k);
      else if (row) rep.staleColdCopies.push(k); // the row says hot again (or in a pack): a copy gc removes
      else rep.coldOrphans.push(k);
    }
  }
  return { generation, actual, rows };
}

/**
 * Reads every blob that has a row and an object. A blob that fails is read
 * again after re-checking that its row and object still exist (gc may have
 * deleted both meanwhile), then marked corrupt; one that reads back clears
 * an earlier mark.
 */
async function deepScan(ctx: CheckDeps, rep: CheckReport, f: Findings, objects: Listing): Promise<void> {
  const bad = new Set<string>();
  const good: string[] = [];
  const scan = async (k: string, row: Row): Promise<boolean> =>
    (await ctx.blobStore.scan({ key: Buffer.from(k, 'hex'), codec: row.codec, size: row.size, domainKey: ctx.domainKey(row.domain), ...placeOf(row) })).ok;
  for (const [k, row] of f.rows) {
    if (!present(objects, k, row)) continue;
    if (await scan(k, row)) {
      if (row.corrupt) good.push(k);
      continue;
    }
    // re-read where the row says now: gc may have deleted it, tier or repack moved it meanwhile
    const now = ctx.index.row(Buffer.from(k, 'hex'));
    if (!now || !(await ctx.blobStore.tierBackend(now.tier).stat(now.pack_name ?? objectKey({ key: Buffer.from(k, 'hex'), tier: now.tier, instance: now.instance })))) continue;
    if (!(await scan(k, { ...row, ...now }))) bad.add(k);
    else if (row.corrupt) good.push(k);
  }
  rep.corruptBlobs = [...bad];
  if (bad.size || good.length) {
    await ctx.index.setCorrupt(
      [...bad].map((k) => Buffer.from(k, 'hex')),
      good.map((k) => Buffer.from(k, 'hex')),
    );
  }
}

/**
 * Node of a cluster, --deep: every referenced shared blob has one of its
 * recorded markers in the bucket (one LIST per blob). A row that changed
 * since the snapshot is looked at again as it is now.
 */
async function markersInBucket(ctx: CheckDeps, rep: CheckReport, f: Findings): Promise<void> {
  const marked = async (hash: Buffer, instance: string): Promise<boolean> => {
    const there = new Set(await ctx.shared!.ownMarkers(hash, instance));
    return ctx.index.view.markerTokens(hash, instance).some((t) => there.has(t));
  };
  for (const [k, row] of f.rows) {
    if (row.tier !== Tier.Shared || row.refs <= 0 || rep.missingMarkers.includes(k)) continue;
    const hash = Buffer.from(k, 'hex');
    if (await marked(hash, row.instance!)) continue;
    const now = ctx.index.row(hash);
    if (now && now.tier === Tier.Shared && now.refs > 0 && !(await marked(hash, now.instance!))) rep.missingMarkers.push(k);
  }
}

/** Closes the window between the listing and the snapshot: gc may have deleted a listed object since, a commit may have added one. */
async function closeWindow(ctx: CheckDeps, rep: CheckReport, listed: Listing, f: Findings): Promise<void> {
  const hot = ctx.blobStore.backend;
  const cold = ctx.blobStore.cold;
  // where a row's bytes are now (the row may have moved since the snapshot: tier, repack)
  const gone = async (k: string): Promise<boolean> => {
    const now = ctx.index.row(Buffer.from(k, 'hex'));
    if (!now) return !(await hot.stat(k));
    return !(await ctx.blobStore.tierBackend(now.tier).stat(now.pack_name ?? objectKey({ key: Buffer.from(k, 'hex'), tier: now.tier, instance: now.instance })));
  };
  rep.orphans = await filterAsync(rep.orphans, async (k) => (await hot.stat(k)) !== null && ctx.index.row(Buffer.from(k, 'hex'))?.tier !== 0);
  rep.staleHotCopies = await filterAsync(rep.staleHotCopies, async (k) => (await hot.stat(k)) !== null && ctx.index.row(Buffer.from(k, 'hex'))?.tier !== 0);
  rep.coldOrphans = cold ? await filterAsync(rep.coldOrphans, async (k) => (await cold.stat(k)) !== null) : [];
  const stillElsewhere = (k: string): boolean => {
    const now = ctx.index.row(Buffer.from(k, 'hex'));
    return !now || !(now.tier === 1 && !now.pack_name);
  };
  rep.staleColdCopies = cold ? await filterAsync(rep.staleColdCopies, async (k) => stillElsewhere(k) && (await cold.stat(k)) !== null) : [];
  rep.uncommitted = await filterAsync(rep.uncommitted, async (k) => (await hot.stat(k)) !== null || (!!cold && (await cold.stat(k)) !== null));
  rep.missingBlobs = await filterAsync(rep.missingBlobs, gone);
  rep.danglingRows = await filterAsync(rep.danglingRows, gone);
  rep.missingRows = rep.missingRows.filter((k) => rep.missingBlobs.includes(k) || listed.hot.has(k));
  void f;
}

/** Messages that reference a missing or corrupt blob (from the parts table: no layout decoding). */
function damaged(ctx: CheckDeps, rep: CheckReport): void {
  const ids = new Set<number>();
  for (const k of [...rep.missingBlobs, ...rep.corruptBlobs]) for (const id of ctx.messages.referencing(Buffer.from(k, 'hex'))) ids.add(id);
  rep.damagedMessages = [...ids].sort((a, b) => a - b).map(String);
}

/**
 * Applies the fixes. Returns false (nothing done) when a commit or expunge
 * happened since the snapshot: its counts are stale, the caller looks again.
 * While any message cannot be decoded, no count is lowered and nothing is
 * deleted: its references might be more than the parts table says.
 */
async function repair(ctx: CheckDeps, rep: CheckReport, f: Findings, listed: Listing): Promise<boolean> {
  const fixed = { refcounts: 0, rowsCreated: 0, orphansDeleted: 0, rowsDropped: 0, packs: 0, markers: 0 };
  const cautious = rep.corruptMessages.length > 0;
  // find how each object of a missing row reads back before taking any lock (this reads blobs)
  const recreate: { k: string; size: number; codec: number; domain: string; chunks: Buffer | null }[] = [];
  for (const k of rep.missingRows) {
    if (!listed.hot.has(k)) continue;
    const size = ctx.messages.partSize(Buffer.from(k, 'hex'));
    if (size === null) continue;
    const found = await detectCodec(ctx, Buffer.from(k, 'hex'), size);
    if (found) recreate.push({ k, size, ...found });
  }
  const made = new Set(recreate.map((r) => r.k));
  const done = await ctx.index.applyRepair(f.generation, {
    // while a message cannot be decoded, no count is lowered (its references might be more than the parts table says)
    counts: rep.drift.filter((d) => !cautious || d.actual >= d.stored).map((d) => ({ hash: Buffer.from(d.hash, 'hex'), refs: d.actual })),
    recreate: recreate.map((r) => ({ hash: Buffer.from(r.k, 'hex'), domain: r.domain, size: r.size, stored: listed.hot.get(r.k)!, codec: r.codec, refs: f.actual.get(r.k)!, chunks: r.chunks })),
    // rows of unreferenced blobs whose object is gone: nothing to keep
    dropDangling: cautious ? [] : rep.danglingRows.map((k) => Buffer.from(k, 'hex')),
    relivePacks: rep.packDrift.map((p) => p.pack),
  });
  if (!done) return false;
  Object.assign(fixed, done);
  rep.missingRows = rep.missingRows.filter((k) => !made.has(k));
  // node of a cluster: a referenced shared blob without a marker gets one again (recorded first, as an ingest does)
  for (const k of [...rep.missingMarkers]) {
    const hash = Buffer.from(k, 'hex');
    const row = ctx.index.row(hash);
    if (!ctx.shared || !row || row.tier !== Tier.Shared || row.refs <= 0) continue;
    const token = `repair:${Leases.newToken()}`;
    await ctx.index.instances.recordMarkerNow({ hash, instance: row.instance!, token });
    await ctx.shared.putMarker(hash, row.instance!, token);
    rep.missingMarkers = rep.missingMarkers.filter((x) => x !== k);
    fixed.markers++;
  }
  if (!cautious) {
    // orphans: deleted inside a write transaction that re-checks them (still unwanted, no lease of any age), as gc does
    const tiers: [number, string[]][] = [
      [0, [...rep.orphans, ...rep.staleHotCopies]],
      [1, [...rep.coldOrphans, ...rep.staleColdCopies]],
    ];
    for (const [tier, keys] of tiers) {
      const backend = ctx.blobStore.tierBackend(tier === 1 && !ctx.blobStore.cold ? 0 : tier);
      for (let i = 0; i < keys.length; i += GC_BATCH) {
        const { deleted } = await ctx.index.retire.deleteUnwanted(tier, keys.slice(i, i + GC_BATCH), (k) => backend.delete(k));
        fixed.orphansDeleted += deleted.length;
      }
    }
  } else {
    rep.repairNote = `${rep.corruptMessages.length} message(s) cannot be decoded (${rep.corruptMessages.slice(0, 5).join(' ')}): counts were only raised and nothing was deleted; restore or expunge them, then repair again`;
  }
  rep.repaired = fixed;
  return true;
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
async function detectCodec(ctx: CheckDeps, hash: Buffer, size: number): Promise<{ codec: number; domain: string; chunks: Buffer | null } | null> {
  const domains = ['', ...ctx.index.view.domains().filter((d) => d)];
  for (const codec of ALL_BLOB_CODECS) {
    for (const domain of domains) {
      const r = await ctx.blobStore.scan({ key: hash, codec, size, domainKey: ctx.domainKey(domain) });
      if (r.ok) return { codec, domain, chunks: r.chunks };
    }
  }
  return null;
}
