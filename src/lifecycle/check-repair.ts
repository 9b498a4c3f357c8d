import { ALL_BLOB_CODECS, Tier } from '../cas/blob-store.js';
import { Leases } from '../blob-index/leases.js';
import { GC_BATCH } from '../limits.js';
import type { CheckDeps, CheckReport, Findings, Listing } from './check-report.js';

/**
 * Applies the fixes. Returns false (nothing done) when a commit or expunge
 * happened since the snapshot: its counts are stale, the caller looks again.
 * While any message cannot be decoded, no count is lowered and nothing is
 * deleted: its references might be more than the parts table says.
 */
export async function repair(ctx: CheckDeps, rep: CheckReport, f: Findings, listed: Listing): Promise<boolean> {
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
      const backend = ctx.blobStore.tierBackend(tier === Tier.Cold && !ctx.blobStore.cold ? Tier.Primary : tier);
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
