import path from 'node:path';
import { Messages } from '../meta/messages.js';
import type { BlobBackend } from '../backend/backend.js';
import { blobRefs } from '../layout/layout.js';
import { unpackSummedLayout } from '../layout/packed-layout.js';
import { Tier, objectKey } from '../cas/blob-store.js';
import { counter, readSnapshot, type Db } from '../meta/db.js';
import { BlobIndexView } from '../blob-index/index-view.js';
import { PACK_NAME_HEX } from '../blob-index/packs.js';
import { placeOf } from '../blob-index/refcounts.js';


import { GENERATION } from '../meta/schema.js';
import { tempFilesIn } from '../util/temp-files.js';
import { emptyReport, present, type CheckDeps, type CheckOptions, type CheckReport, type Findings, type Listing, type Row } from './check-report.js';
import { repair } from './check-repair.js';

export type { CheckDeps, CheckOptions, CheckReport } from './check-report.js';







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
    for (const dir of [ctx.tmpDir, ctx.blobStore.backend.tempDir]) {
      if (!dir) continue;
      const t = tempFilesIn(dir);
      rep.tempFiles += t.files;
      rep.tempBytes += t.bytes;
    }
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

/** Reads one snapshot of the metadata on a read-only connection and compares it with the listing. */
function snapshot(ctx: CheckDeps, rep: CheckReport, objects: Listing): Findings {
  return readSnapshot(path.join(ctx.dir, 'meta.sqlite'), (reader) => {
    const f = examine(ctx, reader, rep, objects);
    rep.packDrift = new BlobIndexView(reader).packDrift();
    return f;
  });
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
      const { layout, sumOk } = unpackSummedLayout({ ...r, sum: r.layout_sum }, (id) => ctx.dictionary(id));
      refs = blobRefs(layout);
      // header blocks, inline bodies or tree not as stored: damaged (its references are still those its layout names)
      if (sumOk === false) rep.corruptMessages.push(String(r.id));
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
    if (objects.cold && row.tier === Tier.Primary && a > 0) {
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
    if (row && row.tier === Tier.Primary) continue;
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
      if (row && row.tier === Tier.Cold && !row.pack_name) continue;
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
  rep.rehashed = { blobs: 0, bytes: 0 };
  for (const [k, row] of f.rows) {
    if (!present(objects, k, row)) continue;
    rep.rehashed.blobs++;
    rep.rehashed.bytes += row.size;
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
  rep.orphans = await filterAsync(rep.orphans, async (k) => (await hot.stat(k)) !== null && ctx.index.row(Buffer.from(k, 'hex'))?.tier !== Tier.Primary);
  rep.staleHotCopies = await filterAsync(rep.staleHotCopies, async (k) => (await hot.stat(k)) !== null && ctx.index.row(Buffer.from(k, 'hex'))?.tier !== Tier.Primary);
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
