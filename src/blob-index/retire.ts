import { Tier } from '../cas/blob-location.js';
import { bumpCounter } from '../meta/db.js';
import { GENERATION } from '../meta/schema.js';
import { DELETE_CONCURRENCY } from '../limits.js';
import { forEachLimit } from '../util/pool.js';
import { crashPoint } from '../util/crash-points.js';
import { PACK_NAME_HEX } from './packs.js';
import type { IndexTables } from './index-tables.js';

/** An unreferenced blob gc may delete. */
export interface UnreferencedBlob {
  hash: Buffer;
  stored: number;
  tier: number;
  pack: number | null;
}

/**
 * The blob index's retire and delete transitions (gc, check --repair): I2
 * (revoke, then delete inside a write transaction that finds nothing wanting
 * the object and no lease on it) and I3 (packs taken back from builders
 * whose lease is gone). See blob-index.ts for the invariants.
 */
export class Retire {
  constructor(private readonly t: IndexTables) {}

  /**
   * I3 and I2 for packs: packs retired before `cut`, and packs never filled
   * by a builder whose lease is gone or expired by `now` (taken back here:
   * the builder's leases revoked, the record marked, in one committed
   * transaction, so its publish fails), that no row points into, lose their
   * object (`del`), then their record: a retired pack's at once, a taken-back
   * one's only once `keepRecordMs` has passed (a PUT of its builder may still
   * land: the record keeps that object known until then, and every gc deletes
   * it again). Answers the packs whose object went for the first time.
   */
  async takeBackDeadPacks(cut: number, now: number, keepRecordMs: number, del: (name: string) => Promise<void>): Promise<{ name: string; size: number }[]> {
    const dead = await this.t.txn(() => {
      const rows = this.t.packs.deadQ.all({ cut, now }) as { id: number; name: string; size: number; token: string | null; live: number; retired: number | null }[];
      const out: { id: number; name: string; size: number; first: boolean }[] = [];
      for (const p of rows) {
        if (this.t.packs.pointedQ.get(p.id)) continue;
        if (p.retired === null) {
          if (p.token) this.t.leases.revokeToken(p.token);
          this.t.packs.takeBackQ.run(now, p.id);
        }
        out.push({ id: p.id, name: p.name, size: p.size, first: p.live >= 0 });
      }
      return out;
    });
    const gone: { name: string; size: number }[] = [];
    for (const p of dead) {
      await del(p.name);
      await this.t.txn(() => this.t.packs.deleteQ.run({ id: p.id, keepUntil: now - keepRecordMs }));
      if (p.first) gone.push({ name: p.name, size: p.size });
    }
    return gone;
  }  /** I2, first half: revokes the leases on `hashes` that have expired by `now` (gc's clock), committed. */
  revoke(hashes: Buffer[], now: number): Promise<number> {
    if (!hashes.length) return Promise.resolve(0);
    return this.t.txn(() => hashes.reduce((n, h) => n + this.t.leases.revokeExpired(h, now), 0));
  }  /**
   * I2, second half, for unreferenced blobs: inside one write transaction,
   * those still unreferenced since before `cut` and without any lease lose
   * their object (`del`, unless it is a pack entry or in the bucket a
   * cluster shares: their share of the pack goes, or the marker later),
   * then their row. Answers the blobs deleted.
   */
  deleteUnreferenced(rows: UnreferencedBlob[], cut: number, del: (r: UnreferencedBlob) => Promise<void>, now = Date.now()): Promise<UnreferencedBlob[]> {
    return this.t.held(async () => {
      const still = this.t.q('SELECT 1 FROM blobs WHERE hash = ? AND refs <= 0 AND zero_since <= ?');
      const doomed = rows.filter((r) => still.get(r.hash, cut) && !this.t.leases.exists(r.hash));
      await forEachLimit(doomed.filter((r) => r.pack === null && r.tier !== Tier.Shared), DELETE_CONCURRENCY, async (r) => {
        await del(r);
        crashPoint('gc-deleted');
      });
      const delRow = this.t.q('DELETE FROM blobs WHERE hash = ? AND refs <= 0');
      for (const r of doomed) {
        if (r.pack !== null) this.t.packs.shrinkQ.run({ by: r.stored, now, id: r.pack }); // its share of the pack (of a frame, for framed entries)
        delRow.run(r.hash);
      }
      if (doomed.length) bumpCounter(this.t.db, GENERATION);
      return doomed;
    });
  }  /** Revokes expired leases (by `now`) on the blobs named by these object keys (pack names have none). */
  revokeKeys(keys: string[], now: number): Promise<number> {
    return this.revoke(
      keys.filter((k) => k.length !== PACK_NAME_HEX).map((k) => Buffer.from(k, 'hex')),
      now,
    );
  }  /**
   * I2, second half, for objects nothing points at (orphans, stale copies):
   * inside one write transaction, those still unwanted in `tier` and without
   * any lease are deleted (`del`). Answers the keys deleted and how many a
   * lease kept.
   */
  deleteUnwanted(tier: number, keys: string[], del: (key: string) => Promise<void>): Promise<{ deleted: string[]; kept: number }> {
    return this.t.held(async () => {
      let kept = 0;
      const doomed = keys.filter((k) => {
        if (this.t.view.wanted(tier, k, PACK_NAME_HEX)) return false;
        if (k.length !== PACK_NAME_HEX && this.t.leases.exists(Buffer.from(k, 'hex'))) {
          kept++;
          return false;
        }
        return true;
      });
      await forEachLimit(doomed, DELETE_CONCURRENCY, async (k) => {
        await del(k);
        crashPoint('gc-deleted');
      });
      return { deleted: doomed, kept };
    });
  }  /**
   * Expired leases (by `now`) whose blob is committed, or whose object
   * `gone` says is not there: nothing left for them to protect.
   */
  dropExpiredLeases(now: number, gone: (hash: Buffer) => Promise<boolean>): Promise<number> {
    return this.t.held(async () => {
      let n = 0;
      for (const h of this.t.leases.expiredHashes(now)) {
        if (this.t.refcounts.row(h) !== undefined || (await gone(h))) n += this.t.leases.dropExpired(h, now);
      }
      return n;
    });
  }
}
