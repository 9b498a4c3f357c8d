import type { Statement } from 'better-sqlite3';
import type { Db } from '../meta/db.js';
import { REPACK_BELOW } from '../limits.js';

/** A pack row: an object in the cold tier holding many small blobs. */
export interface PackRow {
  id: number;
  name: string;
  size: number;
  live: number;
}

/** A blob's entry in a pack, as repack reads it. */
export interface PackEntryRow {
  hash: Buffer;
  size: number;
  stored: number;
  codec: number;
  domain: string;
  pack_offset: number;
  pack_length: number;
  frame_offset: number | null;
}

/** Pack names are 32 hex characters; blob keys 64. */
export const PACK_NAME_HEX = 32;

/**
 * The packs table. A pack has four states: being built (its row names the
 * builder's lease token; the object may not be durable yet), live (rows of
 * blobs point into it; token NULL), retired (repacked or emptied: kept a
 * grace period for readers in flight, then deleted) and taken back (gc took
 * a pack whose builder's lease it revoked: live -1; its object is deleted by
 * every gc until no PUT of the builder can still land, then its record goes,
 * so a late PUT never leaves an object nobody knows of). Statements only; the
 * transitions that combine them with the blobs and leases are BlobIndex's.
 */
export class Packs {
  readonly reserveQ: Statement;
  readonly buildingQ: Statement;
  readonly publishQ: Statement;
  readonly shrinkQ: Statement;
  readonly sparseQ: Statement;
  readonly entriesQ: Statement;
  readonly deadQ: Statement;
  readonly pointedQ: Statement;
  readonly deleteQ: Statement;
  readonly takeBackQ: Statement;
  readonly retireQ: Statement;
  readonly setLiveQ: Statement;
  readonly knownQ: Statement;

  constructor(db: Db) {
    this.reserveQ = db.prepare('INSERT INTO packs(name, size, live, created, token) VALUES (?, ?, 0, ?, ?)');
    this.buildingQ = db.prepare('SELECT 1 FROM packs WHERE id = ? AND token = ? AND retired IS NULL');
    this.publishQ = db.prepare('UPDATE packs SET live = @live, token = NULL, retired = CASE WHEN @live <= 0 THEN @now ELSE NULL END WHERE id = @id');
    // an entry gone: the pack's live bytes drop, and an emptied pack is retired
    this.shrinkQ = db.prepare('UPDATE packs SET live = live - @by, retired = CASE WHEN live - @by <= 0 THEN coalesce(retired, @now) ELSE retired END WHERE id = @id');
    this.sparseQ = db.prepare(`SELECT id, name, size, live FROM packs WHERE retired IS NULL AND token IS NULL AND live < size * ${REPACK_BELOW} AND created <= ?`);
    this.entriesQ = db.prepare('SELECT hash, size, stored, codec, domain, pack_offset, pack_length, frame_offset FROM blobs WHERE pack = ? ORDER BY pack_offset');
    // retired long enough ago, or never filled (a builder that died: its lease gone or expired), and no row points into it
    this.deadQ = db.prepare(
      `SELECT id, name, size, token, live, retired FROM packs p
       WHERE ((retired IS NOT NULL AND retired <= @cut)
          OR (retired IS NULL AND live <= 0 AND created <= @cut
              AND (token IS NULL OR NOT EXISTS (SELECT 1 FROM leases l WHERE l.token = p.token AND l.expires > @now))))
         AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id)`,
    );
    this.pointedQ = db.prepare('SELECT 1 FROM blobs WHERE pack = ? LIMIT 1');
    // a taken-back pack's record (live -1) stays until no PUT of its builder can still land, so its object is never unexplained
    this.deleteQ = db.prepare('DELETE FROM packs WHERE id = @id AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = @id) AND (live >= 0 OR retired <= @keepUntil)');
    this.takeBackQ = db.prepare('UPDATE packs SET token = NULL, live = -1, retired = ? WHERE id = ?');
    this.retireQ = db.prepare('UPDATE packs SET retired = ? WHERE id = ?');
    this.setLiveQ = db.prepare('UPDATE packs SET live = ?, token = NULL WHERE id = ?');
    this.knownQ = db.prepare('SELECT 1 FROM packs WHERE name = ?');
  }
}
