import { Tier } from '../cas/blob-location.js';
import crypto from 'node:crypto';
import { MailcasError, isMailcasError } from '../errors.js';
import type { BlobBackend, PutSource } from '../backend/backend.js';
import { bufferSource } from '../backend/backend.js';
import { hashBuffer, newHasher } from '../util/hash.js';
import { BlobCodec } from '../cas/blob-codec.js';
import type { BlobStore } from '../cas/blob-store.js';
import type { BlobIndex } from '../blob-index/blob-index.js';
import type { HotCandidate } from '../blob-index/index-view.js';
import { Leases } from '../blob-index/leases.js';
import { coldFile, verifiedCanonical } from '../pack/cold-encoding.js';
import { PackBuilder, type PackPlan } from '../pack/pack-builder.js';
import type { PackCandidate } from '../pack/cold-encoding.js';
import { forEachLimit } from '../util/pool.js';
import { COLD_REENCODE_MAX_BYTES, PACK_ENTRY_MAX_BYTES, TIER_BATCH } from '../limits.js';
import { crashPoint } from '../util/crash-points.js';

export interface TierOptions {
  /** Move blobs created at least this long ago (0: all). */
  olderThanMs: number;
  /** Only blobs of at least this many canonical bytes. */
  minSize?: number;
  dryRun?: boolean;
  /** Stop after this many blobs (a background uploader works in small steps). */
  limit?: number;
  now?: () => number;
}

export interface TierReport {
  dryRun: boolean;
  /** Blobs moved as objects of their own, and their stored bytes (as moved). */
  objects: number;
  objectBytes: number;
  /** Blobs moved into packs, their stored bytes (as packed), and the packs written. */
  packed: number;
  packedBytes: number;
  packs: number;
  /** Of the moved: blobs re-encoded with brotli on the way, and the bytes that saved. */
  recompressed: number;
  recompressSavedBytes: number;
  /** Hot copies kept for now because an ingest in flight holds a lease on them (gc removes them later). */
  keptLeased: number;
  /** Moves given up because gc revoked this run's lease or took its pack back (its clock said they expired): the blobs stay hot, the next run moves them. */
  lost: number;
  /** Blobs whose hot copy does not read back (marked corrupt, left where they are). */
  corrupt: string[];
  /** What is still hot and referenced after this run. */
  pendingUploads: number;
  pendingBytes: number;
}

export interface TierDeps {
  index: BlobIndex;
  blobStore: BlobStore;
  leaseTtlMs: number;
  tmpDir: string;
  domainKey(domain: string): Buffer | null;
}

export function emptyTierReport(dryRun: boolean): TierReport {
  return { dryRun, objects: 0, objectBytes: 0, packed: 0, packedBytes: 0, packs: 0, recompressed: 0, recompressSavedBytes: 0, keptLeased: 0, lost: 0, corrupt: [], pendingUploads: 0, pendingBytes: 0 };
}

/**
 * Moves referenced blobs from the hot tier (local files) to the cold tier
 * (the bucket): large ones as objects of their own, small ones together in
 * packs. Every move is the blob index's publish (I1): under a lease of this
 * run's, renewed while it works, the cold copy is made durable (and
 * verified against what the hot copy holds), then the row switches to it
 * in a transaction that finds the lease (and, for a pack, the pack's record)
 * still there; the hot copy is deleted only after the switch, in a write
 * transaction that finds no lease on it (I4). A crash leaves at worst an
 * extra copy, which gc reclaims; a revoked lease leaves the blob hot.
 * Memory: small blobs wait in a PackBuilder bounded by TIER_MEMORY_BYTES.
 */
export async function runTier(deps: TierDeps, opts: TierOptions): Promise<TierReport> {
  const cold = deps.blobStore.cold;
  if (!cold) throw new MailcasError('E_USAGE', 'this store has no cold tier (create it with init --s3 URL --tiered or --write-behind)');
  const { index } = deps;
  const clock = opts.now ?? Date.now;
  const rep = emptyTierReport(!!opts.dryRun);
  let after: { created: number; hash: Buffer } = { created: -Infinity, hash: Buffer.alloc(0) };
  let done = 0;
  for (;;) {
    const want = Math.min(TIER_BATCH, (opts.limit ?? Infinity) - done);
    if (want <= 0) break;
    const rows = index.view.hotCandidates(clock() - opts.olderThanMs, opts.minSize ?? 0, after, want);
    if (!rows.length) break;
    after = rows[rows.length - 1];
    done += rows.length;
    if (opts.dryRun) {
      for (const r of rows) {
        if (r.stored <= PACK_ENTRY_MAX_BYTES) {
          rep.packed++;
          rep.packedBytes += r.stored;
        } else {
          rep.objects++;
          rep.objectBytes += r.stored;
        }
      }
      continue;
    }
    // verify each hot copy before it is copied anywhere: corruption is marked, never spread
    const corrupt = async (r: HotCandidate): Promise<void> => {
      rep.corrupt.push(r.hash.toString('hex'));
      await index.markCorrupt(r.hash);
    };
    const moved: Buffer[] = [];
    await forEachLimit(
      rows.filter((r) => r.stored > PACK_ENTRY_MAX_BYTES),
      4,
      async (r) => {
        if ((await deps.blobStore.scan({ key: r.hash, codec: r.codec, size: r.size, domainKey: deps.domainKey(r.domain), tier: Tier.Primary })).ok) await moveObject(deps, cold, r, rep, moved);
        else await corrupt(r);
      },
    );
    // small blobs, in the order they arrived (neighbours in time share the most: frames compress them together),
    // each read once, verified from the bytes read, and held only until the builder's budget is full
    const builder = new PackBuilder((plan) => writePack(deps, cold, plan, rep, moved));
    const small = rows.filter((r) => r.stored <= PACK_ENTRY_MAX_BYTES).sort((a, b) => a.created - b.created || Buffer.compare(a.hash, b.hash));
    for (const r of small) {
      const c = await smallCandidate(deps, r);
      if (c) await builder.add(c);
      else await corrupt(r);
    }
    await builder.finish();
    // the hot copies, now that the metadata points at the cold ones
    for (let i = 0; i < moved.length; i += 64) {
      const { kept } = await index.dropHotCopies(moved.slice(i, i + 64), (hex) => deps.blobStore.backend.delete(hex));
      rep.keptLeased += kept;
    }
  }
  const p = index.view.pending();
  rep.pendingUploads = p.blobs;
  rep.pendingBytes = p.bytes;
  return rep;
}

/**
 * A small hot blob read once and checked against its name from the bytes
 * read (a deflated one decoded: older mail is packed better compressed,
 * re-encoded with brotli, see cold-encoding.ts); null when it is missing or
 * does not match.
 */
async function smallCandidate(deps: TierDeps, r: HotCandidate): Promise<PackCandidate | null> {
  const domainKey = deps.domainKey(r.domain);
  let hot: Buffer;
  try {
    hot = await readAll(deps.blobStore.backend, r.hash.toString('hex'));
  } catch (e) {
    if (isMailcasError(e, 'E_INTEGRITY')) return null;
    throw e;
  }
  if (r.codec === BlobCodec.Deflate && r.size <= COLD_REENCODE_MAX_BYTES) {
    const canonical = verifiedCanonical(hot, r, domainKey);
    return canonical === 'damaged' ? null : { hash: r.hash, codec: r.codec, hot, canonical };
  }
  if (r.codec === BlobCodec.None) return hot.length === r.size && hashBuffer(hot, domainKey ?? undefined).equals(r.hash) ? { hash: r.hash, codec: r.codec, hot, canonical: null } : null;
  // (a small deflated blob that inflates past the re-encoding limit: checked streaming, packed as it is)
  return (await deps.blobStore.scan({ key: r.hash, codec: r.codec, size: r.size, domainKey, tier: Tier.Primary })).ok ? { hash: r.hash, codec: r.codec, hot, canonical: null } : null;
}

/** A large blob: one object of its own (a deflated one re-encoded with brotli through a temp file when that is smaller). */
async function moveObject(deps: TierDeps, cold: BlobBackend, row: HotCandidate, rep: TierReport, moved: Buffer[]): Promise<void> {
  const hot = deps.blobStore.backend;
  const hex = row.hash.toString('hex');
  const token = Leases.newToken();
  // the lease first (committed): gc must not take the cold copy for an orphan before the switch
  await deps.index.lease(token, [row.hash], Date.now() + deps.leaseTtlMs);
  const alive = deps.index.keepAlive(token, deps.leaseTtlMs);
  let re: Awaited<ReturnType<typeof coldFile>> = null;
  let published = false;
  try {
    try {
      re = row.codec === BlobCodec.Deflate ? await coldFile(() => streamOf(hot, hex), row.stored, row, deps.domainKey(row.domain), deps.tmpDir) : null;
    } catch (e) {
      if (isMailcasError(e, 'E_INTEGRITY') && (e as MailcasError).data?.missing) return; // (as below)
      throw e;
    }
    if (re === 'damaged') return;
    const src: PutSource = re ? re.source : { size: row.stored, open: () => streamOf(hot, hex) };
    const size = re ? re.size : row.stored;
    const codec = re ? BlobCodec.Brotli : row.codec;
    try {
      await cold.put(hex, src, { size, digest: re ? re.digest : await digestOf(hot, hex) }, { overwrite: true }); // whatever was there, it is now these verified bytes
    } catch (e) {
      // the hot copy went since it was scanned (its last reference expunged and gc took it): nothing to move
      if (isMailcasError(e, 'E_INTEGRITY') && (e as MailcasError).data?.missing) return;
      throw e;
    }
    const r = await deps.index.publishCold(token, row.hash, codec, size);
    published = true;
    crashPoint('tier-switched');
    if (r === 'lease-lost') rep.lost++;
    if (r !== 'moved') return;
    rep.objects++;
    rep.objectBytes += size;
    if (re) {
      rep.recompressed++;
      rep.recompressSavedBytes += row.stored - size;
    }
    moved.push(row.hash);
  } finally {
    alive.stop();
    if (re && re !== 'damaged') re.remove();
    if (!published) await deps.index.release(token);
  }
}

/** A pack of small blobs: recorded (with this run's lease on its members) before it is written, published once durable. */
async function writePack(deps: TierDeps, cold: BlobBackend, plan: PackPlan, rep: TierReport, moved: Buffer[]): Promise<void> {
  const name = crypto.randomBytes(16).toString('hex'); // 32 hex: never a blob key (64)
  const token = Leases.newToken();
  const id = await deps.index.reservePack(
    token,
    name,
    plan.body.length,
    plan.members.map((m) => m.hash),
    Date.now() + deps.leaseTtlMs,
  );
  const alive = deps.index.keepAlive(token, deps.leaseTtlMs);
  let published = false;
  try {
    await cold.put(name, bufferSource(plan.body), { size: plan.body.length, digest: hashBuffer(plan.body) });
    crashPoint('pack-written');
    const r = await deps.index.publishPack(token, id, plan.members);
    published = true;
    if (r === 'lost') {
      rep.lost += plan.members.length;
      return;
    }
    if (r.moved.length) rep.packs++;
    const saved = new Map(plan.members.map((m) => [m.hash.toString('hex'), m.saved]));
    for (const m of r.moved) {
      rep.packed++;
      rep.packedBytes += m.stored;
      if (m.codec !== BlobCodec.None && m.codec !== BlobCodec.Deflate) {
        rep.recompressed++;
        rep.recompressSavedBytes += saved.get(m.hash.toString('hex')) ?? 0;
      }
      moved.push(m.hash);
    }
  } finally {
    alive.stop();
    // a pack that never got published: its builder's lease goes, so gc takes the record (and the object) back
    if (!published) await deps.index.release(token);
  }
}

async function readAll(b: BlobBackend, key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of streamOf(b, key)) parts.push(c);
  return Buffer.concat(parts);
}

async function* streamOf(b: BlobBackend, key: string): AsyncGenerator<Buffer> {
  const s = await b.get(key);
  if (!s) throw new MailcasError('E_INTEGRITY', `blob ${key} is missing from the hot tier`, { data: { key, missing: true } });
  for await (const c of s) yield c as Buffer;
}

async function digestOf(b: BlobBackend, key: string): Promise<Buffer> {
  const h = newHasher();
  for await (const c of streamOf(b, key)) h.update(c);
  return h.digest();
}
