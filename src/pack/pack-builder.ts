import { PACK_TARGET_BYTES, TIER_MEMORY_BYTES } from '../limits.js';
import { packPieces, type PackCandidate, type PackPiece } from './cold-encoding.js';

/** A pack's worth of pieces, and where each member's piece starts. */
export interface PackPlan {
  body: Buffer;
  members: { hash: Buffer; offset: number; length: number; frameOffset: number | null; codec: number; stored: number; saved: number }[];
}

/**
 * Turns small blobs into packs of about PACK_TARGET_BYTES with bounded
 * memory: candidates (their hot bytes and, when deflated, their canonical
 * bytes) are held only until `budget` bytes of them are waiting, then
 * encoded into pieces (brotli frames of neighbours, or single blobs), which
 * are small; a full pack goes to `write` at once. Peak memory is about the
 * budget plus one pack, whatever the batch holds.
 */
export class PackBuilder {
  private waiting: PackCandidate[] = [];
  private waitingBytes = 0;
  private pieces: PackPiece[] = [];
  private pieceBytes = 0;

  constructor(
    private readonly write: (plan: PackPlan) => Promise<void>,
    private readonly budget = TIER_MEMORY_BYTES,
    private readonly target = PACK_TARGET_BYTES,
  ) {}

  /** Adds a candidate, in arrival order; resolves once its memory is within the budget again. */
  async add(c: PackCandidate): Promise<void> {
    this.waiting.push(c);
    this.waitingBytes += c.hot.length + (c.canonical?.length ?? 0);
    if (this.waitingBytes >= this.budget) await this.encode();
  }

  /** Encodes and writes everything still waiting (the last pack may be smaller than the target). */
  async finish(): Promise<void> {
    await this.encode();
    while (this.pieces.length) await this.writeOne();
  }

  private async encode(): Promise<void> {
    const group = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    for (const p of await packPieces(group)) {
      this.pieces.push(p);
      this.pieceBytes += p.bytes.length;
    }
    while (this.pieceBytes >= this.target) await this.writeOne();
  }

  /** Writes the first pieces, up to the target size (at least one). */
  private async writeOne(): Promise<void> {
    const take: PackPiece[] = [];
    let size = 0;
    while (this.pieces.length && (size < this.target || !take.length)) {
      const p = this.pieces.shift()!;
      take.push(p);
      size += p.bytes.length;
    }
    this.pieceBytes -= size;
    const members: PackPlan['members'] = [];
    let off = 0;
    for (const p of take) {
      for (const m of p.members) members.push({ hash: m.hash, offset: off, length: p.bytes.length, frameOffset: m.frameOffset, codec: m.codec, stored: m.stored, saved: m.saved });
      off += p.bytes.length;
    }
    await this.write({ body: Buffer.concat(take.map((p) => p.bytes), size), members });
  }
}
