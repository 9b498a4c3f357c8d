import crypto from 'node:crypto';
import { BlobCodec, frameBytes } from '../cas/blob-codec.js';
import type { BlobStore } from '../cas/blob-store.js';
import { hashBuffer } from '../util/hash.js';
import { bufferSource } from '../backend/backend.js';
import { Leases } from '../blob-index/leases.js';
import type { BlobIndex } from '../blob-index/blob-index.js';
import type { PackEntryRow } from '../blob-index/packs.js';
import { REPACK_BELOW } from '../limits.js';
import { crashPoint } from '../util/crash-points.js';
import { packPieces, type PackCandidate } from './cold-encoding.js';

export interface RepackDeps {
  index: BlobIndex;
  blobStore: BlobStore;
  leaseTtlMs: number;
  domainKey(domain: string): Buffer | null;
}

export interface RepackReport {
  /** Packs rewritten because most of their bytes were dead. */
  repacked: number;
  /** Rewrites given up because gc took the new pack back before it was published (nothing moved). */
  lost: number;
  /** Pack objects deleted (retired, or never filled), and their bytes. */
  deletedPacks: number;
  deletedBytes: number;
}

/**
 * Rewrites packs whose live bytes fell below REPACK_BELOW of their size:
 * the live entries, each verified, go into a new pack, recorded (with this
 * run's lease) before it is written and published only once durable, in a
 * transaction that finds it still recorded as ours (BlobIndex I1, I3); the
 * old pack is retired. Then packs retired before `cut` (or never filled by
 * a builder that died) are taken back and their objects deleted, so a
 * reader that found a row just before a move still finds its bytes for the
 * grace period. Memory: one pack (PACK_TARGET_BYTES) at a time.
 */
export async function repackSparse(deps: RepackDeps, graceMs: number, now: () => number): Promise<RepackReport> {
  const rep: RepackReport = { repacked: 0, lost: 0, deletedPacks: 0, deletedBytes: 0 };
  const cold = deps.blobStore.cold!;
  for (const p of deps.index.view.sparsePacks(now() - graceMs, REPACK_BELOW)) {
    const out = await survivors(deps, p.id, p.name);
    const token = Leases.newToken();
    let newId: number | null = null;
    const alive = deps.index.keepAlive(token, deps.leaseTtlMs);
    try {
      if (out.length) {
        const body = Buffer.concat(out.map((k) => k.bytes));
        const name = crypto.randomBytes(16).toString('hex');
        newId = await deps.index.reservePack(token, name, body.length, out.flatMap((k) => k.members.map((m) => m.hash)), Date.now() + deps.leaseTtlMs);
        await cold.put(name, bufferSource(body), { size: body.length, digest: hashBuffer(body) });
        crashPoint('pack-written');
      }
      const members = [];
      let off = 0;
      for (const k of out) {
        for (const m of k.members) members.push({ ...m, offset: off, length: k.bytes.length });
        off += k.bytes.length;
      }
      if (await deps.index.publishRepack(token, p.id, newId, members)) rep.repacked++;
      else rep.lost++;
    } finally {
      alive.stop();
    }
  }
  const t = now();
  for (const p of await deps.index.retire.takeBackDeadPacks(t - graceMs, t, deps.leaseTtlMs, (name) => cold.delete(name))) {
    rep.deletedPacks++;
    rep.deletedBytes += p.size;
  }
  return rep;
}

interface Piece {
  bytes: Buffer;
  members: { hash: Buffer; codec: number; stored: number; frameOffset: number | null; reframed: boolean }[];
}

/**
 * What stays of a pack: each piece as it is (a blob, or a frame all of whose
 * blobs are still here), or, for a frame some of whose blobs are gone, those
 * that remain framed anew (so a repacked pack is whole). A damaged entry, or
 * one changed since it was scanned, stays where it is (check reports it).
 */
async function survivors(deps: RepackDeps, packId: number, packName: string): Promise<Piece[]> {
  const cold = deps.blobStore.cold!;
  const entries = deps.index.packEntries(packId);
  const byPiece = new Map<number, { bytes: Buffer; decoded?: Buffer | null; members: { e: PackEntryRow; canonical: Buffer | null }[] }>();
  for (const e of entries) {
    const loc = { key: e.hash, codec: e.codec, size: e.size, domainKey: deps.domainKey(e.domain), tier: 1, pack: { name: packName, offset: e.pack_offset, length: e.pack_length, frameOffset: e.frame_offset } };
    if (!(await deps.blobStore.scan(loc)).ok) continue;
    let piece = byPiece.get(e.pack_offset);
    if (!piece) {
      const s = await cold.get(packName, { start: e.pack_offset, end: e.pack_offset + e.pack_length });
      if (!s) continue; // the pack went meanwhile (retired and deleted by another gc): nothing to keep from it
      const parts: Buffer[] = [];
      for await (const c of s) parts.push(c as Buffer);
      piece = { bytes: Buffer.concat(parts), members: [] };
      byPiece.set(e.pack_offset, piece);
    }
    let canonical: Buffer | null = null;
    if (e.codec === BlobCodec.BrotliFrame) {
      // the frame decoded once for all its blobs
      if (piece.decoded === undefined) {
        try {
          piece.decoded = frameBytes(piece.bytes);
        } catch {
          piece.decoded = null; // damaged since scan read it: its blobs stay where they are
        }
      }
      const at = e.frame_offset ?? 0;
      canonical = piece.decoded && piece.decoded.length >= at + e.size ? piece.decoded.subarray(at, at + e.size) : null;
      if (!canonical || !hashBuffer(canonical, deps.domainKey(e.domain) ?? undefined).equals(e.hash)) continue;
    }
    piece.members.push({ e, canonical });
  }
  const out: Piece[] = [];
  const loose: PackCandidate[] = [];
  for (const piece of byPiece.values()) {
    const framed = piece.members.filter((m) => m.canonical);
    const whole = !framed.length || framed.reduce((a, m) => a + m.e.size, 0) === piece.decoded!.length;
    if (whole) out.push({ bytes: piece.bytes, members: piece.members.map((m) => ({ hash: m.e.hash, codec: m.e.codec, stored: m.e.stored, frameOffset: m.e.frame_offset, reframed: false })) });
    else for (const m of framed) loose.push({ hash: m.e.hash, codec: BlobCodec.None, hot: m.canonical!, canonical: m.canonical! });
  }
  for (const piece of await packPieces(loose)) out.push({ bytes: piece.bytes, members: piece.members.map((m) => ({ ...m, reframed: true })) });
  return out;
}
