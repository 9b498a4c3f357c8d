import type { Statement } from 'better-sqlite3';
import { MailcasError } from '../errors.js';
import { bumpCounter, counter, immediate, writeTxn, type Db, type WriteLock } from '../meta/db.js';
import { GENERATION } from '../meta/schema.js';
import { DELETE_CONCURRENCY } from '../limits.js';
import { forEachLimit } from '../util/pool.js';
import { crashPoint } from '../util/crash-points.js';
import { Refcounts, type BlobRefInfo, type BlobRow } from './refcounts.js';
import { Leases } from './leases.js';
import { Markers, type MarkerRecord } from './markers.js';
import { PACK_NAME_HEX, Packs, type PackEntryRow } from './packs.js';
import { BlobIndexView } from './index-view.js';

export type { WriteLock } from '../meta/db.js';

/** Where a blob goes in a pack: its piece's place and, for a frame, where it starts in the frame's decoded bytes. */
export interface PackMember {
  hash: Buffer;
  offset: number;
  length: number;
  frameOffset: number | null;
  codec: number;
  stored: number;
}

/** An unreferenced blob gc may delete. */
export interface UnreferencedBlob {
  hash: Buffer;
  stored: number;
  tier: number;
  pack: number | null;
}

/**
 * The one owner of blob state: the blobs, packs, leases and shared_markers
 * tables (restic's master index). Every step that creates, moves or deletes
 * a blob object (ingest, tier, flush, repack, gc, check --repair, cluster
 * convergence) goes through a named transition here; none writes SQL on
 * these tables itself. The invariants, each enforced in one place:
 *
 *  I1  publish: a row is switched to an object (a message's reference, a
 *      cold copy, a pack entry, another shared instance) only in a
 *      transaction that finds the publisher's lease still held and, for a
 *      pack, the pack still recorded as being built by it. The object is
 *      durable before that transaction starts.
 *  I2  retire: gc deletes an object only after a committed transaction has
 *      revoked the leases on it (those its clock says expired), and only
 *      inside a write transaction, held across the deletion, that finds no
 *      lease of any age on it and nothing (row, pack) wanting it. A holder
 *      whose lease was revoked cannot publish (I1), whatever the clocks say;
 *      a crash between the two leaves an object nobody wants, which the next
 *      gc deletes.
 *  I3  a pack being built is recorded (with its builder's lease token)
 *      before its object is written; gc takes it back only when the
 *      builder's lease is gone or expired, revoking that lease and deleting
 *      the row before the object.
 *  I4  hot copies of blobs whose row says cold go only in a write
 *      transaction that finds no lease on them (an ingest may have confirmed
 *      the hot copy and be about to commit a reference to it).
 */
export class BlobIndex {
  readonly refcounts: Refcounts;
  readonly leases: Leases;
  readonly markers: Markers;
  readonly packs: Packs;
  readonly view: BlobIndexView;
  private readonly stmts = new Map<string, Statement>();

  constructor(
    readonly db: Db,
    private readonly lock: WriteLock,
  ) {
    this.refcounts = new Refcounts(db);
    this.leases = new Leases(db);
    this.markers = new Markers(db);
    this.packs = new Packs(db);
    this.view = new BlobIndexView(db);
  }

  private q(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** One short IMMEDIATE write transaction under this process's write lock. */
  private txn<T>(fn: () => T): Promise<T> {
    return this.lock.run(() => immediate(this.db, fn));
  }

  /** A write transaction held across fn's awaits (backend deletions): no lease can be taken meanwhile. */
  private held<T>(fn: () => Promise<T>): Promise<T> {
    return writeTxn(this.db, this.lock, false, fn);
  }

  row(hash: Buffer): BlobRow | undefined {
    return this.refcounts.row(hash);
  }

  // ---- ingest: reserve, publish hot (inside the commit queue's transaction)

  /** Leases `hashes` for `token` (inside a write transaction) and answers their rows. */
  reserve(token: string, hashes: Buffer[], expires: number): (BlobRow | undefined)[] {
    this.leases.take(token, hashes, expires);
    return hashes.map((h) => this.refcounts.row(h));
  }

  renew(token: string, expires: number): number {
    return this.leases.renew(token, expires);
  }

  /**
   * I1 for an ingest (inside its commit transaction): fails E_LEASE_LOST
   * unless all `leased` leases of `token` are still held, then adds the
   * references and releases the leases.
   */
  publishRefs(token: string, leased: number, refs: BlobRefInfo[], now: number): void {
    if (leased && this.leases.held(token) !== leased) {
      throw new MailcasError('E_LEASE_LOST', 'the ingest took too long: its blob leases were reclaimed by gc before it could commit; try again');
    }
    this.refcounts.add(refs, now);
    if (token) this.leases.release(token);
  }

  /** An expunge's references go (inside its transaction). */
  dropRefs(refs: Iterable<{ hash: Buffer; count: number }>, now: number): void {
    this.refcounts.drop(refs, now);
  }

  recordMarker(m: MarkerRecord, now: number): void {
    this.markers.record(m, now);
  }

  forgetMarker(m: MarkerRecord): number {
    return this.markers.forget(m);
  }

  /** A marker's record in a transaction of its own (check --repair writes the marker after it). */
  recordMarkerNow(m: MarkerRecord, now = Date.now()): Promise<void> {
    return this.txn(() => this.markers.record(m, now));
  }

  // ---- leases as their own transactions (tier, repack, convergence)

  lease(token: string, hashes: Buffer[], expires: number): Promise<void> {
    return this.txn(() => this.leases.take(token, hashes, expires));
  }

  renewLease(token: string, expires: number): Promise<number> {
    return this.txn(() => this.leases.renew(token, expires));
  }

  release(token: string): Promise<void> {
    return this.txn(() => this.leases.release(token));
  }

  /**
   * Keeps `token`'s leases alive while a step works (every third of the
   * lifetime); stop() when it is over. Renewal extends only leases that
   * still exist: a revoked one stays revoked.
   */
  keepAlive(token: string, ttlMs: number): { stop(): void } {
    const t = setInterval(() => void this.renewLease(token, Date.now() + ttlMs).catch(() => {}), Math.max(1000, ttlMs / 3));
    t.unref();
    return { stop: () => clearInterval(t) };
  }

  markCorrupt(hash: Buffer): Promise<void> {
    return this.txn(() => this.refcounts.markCorrupt(hash));
  }

  /** check --deep: marks the damaged, clears the mark of those that read back. */
  setCorrupt(bad: Buffer[], good: Buffer[]): Promise<void> {
    return this.txn(() => {
      for (const h of bad) this.refcounts.markCorrupt(h);
      for (const h of good) this.q('UPDATE blobs SET corrupt = 0 WHERE hash = ?').run(h);
    });
  }

  // ---- publish cold: tier and flush

  /**
   * I1: switches a hot blob to its cold object, now durable, if `token`
   * still holds its lease ('lease-lost': gc revoked it, the cold object may
   * be gone; the hot copy stays). 'gone': the row left the hot tier meanwhile.
   */
  publishCold(token: string, hash: Buffer, codec: number, stored: number): Promise<'moved' | 'gone' | 'lease-lost'> {
    return this.txn(() => {
      if (!this.leases.held(token)) return 'lease-lost';
      const n = this.q('UPDATE blobs SET tier = 1, pack = NULL, pack_offset = NULL, pack_length = NULL, frame_offset = NULL, codec = ?, stored = ? WHERE hash = ? AND tier = 0').run(codec, stored, hash).changes;
      this.leases.release(token);
      return n ? 'moved' : 'gone';
    });
  }

  /** I3: records a pack about to be written (with its builder's lease on `hashes`); answers its id. */
  reservePack(token: string, name: string, size: number, hashes: Buffer[], expires: number, now = Date.now()): Promise<number> {
    return this.txn(() => {
      this.leases.take(token, hashes, expires);
      return Number(this.packs.reserveQ.run(name, size, now, token).lastInsertRowid);
    });
  }

  /** Whether the pack is still recorded as being built by `token`, and its lease held (inside a transaction). */
  private stillBuilding(id: number, token: string): boolean {
    return this.packs.buildingQ.get(id, token) !== undefined && this.leases.held(token) > 0;
  }

  /**
   * I1 for a pack tier wrote (durable now): the members still hot switch to
   * their entries, all in one transaction (a reader sees a blob's old form
   * or its new one, whole). 'lost': gc took the pack back (the builder's
   * lease was revoked); nothing switched, the hot copies stay.
   */
  publishPack(token: string, id: number, members: PackMember[], now = Date.now()): Promise<{ moved: PackMember[] } | 'lost'> {
    return this.txn(() => {
      if (!this.stillBuilding(id, token)) {
        this.leases.release(token);
        return 'lost' as const;
      }
      const set = this.q('UPDATE blobs SET tier = 1, pack = ?, pack_offset = ?, pack_length = ?, frame_offset = ?, codec = ?, stored = ? WHERE hash = ? AND tier = 0');
      const moved: PackMember[] = [];
      let live = 0;
      for (const m of members) {
        if (!set.run(id, m.offset, m.length, m.frameOffset, m.codec, m.stored, m.hash).changes) continue; // taken back by an ingest meanwhile
        live += m.stored;
        moved.push(m);
      }
      this.packs.publishQ.run({ id, live, now });
      this.leases.release(token);
      return { moved };
    });
  }

  /**
   * I4: deletes hot copies of blobs whose row now says cold, unless a lease
   * is on them; answers the hashes kept for a lease.
   */
  dropHotCopies(hashes: Buffer[], del: (hex: string) => Promise<void>): Promise<{ deleted: number; kept: number }> {
    return this.held(async () => {
      const cold = this.q('SELECT 1 FROM blobs WHERE hash = ? AND tier <> 0');
      let kept = 0;
      const doomed = hashes.filter((h) => {
        if (!cold.get(h)) return false;
        if (this.leases.exists(h)) {
          kept++;
          return false;
        }
        return true;
      });
      await forEachLimit(doomed, 8, (h) => del(h.toString('hex')));
      return { deleted: doomed.length, kept };
    });
  }

  // ---- repack

  packEntries(packId: number): PackEntryRow[] {
    return this.packs.entriesQ.all(packId) as PackEntryRow[];
  }

  /**
   * I1 for a repack: the entries still in the old pack move to the new one
   * (durable now), the old one is retired (deleted a grace period later,
   * for readers in flight). False: gc took the new pack back; nothing moved.
   */
  publishRepack(token: string, oldId: number, newId: number | null, members: (PackMember & { reframed: boolean })[], now = Date.now()): Promise<boolean> {
    return this.txn(() => {
      if (newId !== null && !this.stillBuilding(newId, token)) {
        this.leases.release(token);
        return false;
      }
      const move = this.q('UPDATE blobs SET pack = ?, pack_offset = ? WHERE hash = ? AND pack = ?');
      const reframe = this.q('UPDATE blobs SET pack = ?, pack_offset = ?, pack_length = ?, frame_offset = ?, codec = ?, stored = ? WHERE hash = ? AND pack = ?');
      let live = 0;
      for (const m of members) {
        const changed = m.reframed ? reframe.run(newId, m.offset, m.length, m.frameOffset, m.codec, m.stored, m.hash, oldId).changes : move.run(newId, m.offset, m.hash, oldId).changes;
        if (changed) live += m.stored;
      }
      if (newId !== null) this.packs.setLiveQ.run(live, newId);
      this.packs.retireQ.run(now, oldId);
      this.leases.release(token);
      return true;
    });
  }

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
    const dead = await this.txn(() => {
      const rows = this.packs.deadQ.all({ cut, now }) as { id: number; name: string; size: number; token: string | null; live: number; retired: number | null }[];
      const out: { id: number; name: string; size: number; first: boolean }[] = [];
      for (const p of rows) {
        if (this.packs.pointedQ.get(p.id)) continue;
        if (p.retired === null) {
          if (p.token) this.leases.revokeToken(p.token);
          this.packs.takeBackQ.run(now, p.id);
        }
        out.push({ id: p.id, name: p.name, size: p.size, first: p.live >= 0 });
      }
      return out;
    });
    const gone: { name: string; size: number }[] = [];
    for (const p of dead) {
      await del(p.name);
      await this.txn(() => this.packs.deleteQ.run({ id: p.id, keepUntil: now - keepRecordMs }));
      if (p.first) gone.push({ name: p.name, size: p.size });
    }
    return gone;
  }

  // ---- retire and delete: gc, check --repair

  /** I2, first half: revokes the leases on `hashes` that have expired by `now` (gc's clock), committed. */
  revoke(hashes: Buffer[], now: number): Promise<number> {
    if (!hashes.length) return Promise.resolve(0);
    return this.txn(() => hashes.reduce((n, h) => n + this.leases.revokeExpired(h, now), 0));
  }

  /**
   * I2, second half, for unreferenced blobs: inside one write transaction,
   * those still unreferenced since before `cut` and without any lease lose
   * their object (`del`, unless it is a pack entry or in the bucket a
   * cluster shares: their share of the pack goes, or the marker later),
   * then their row. Answers the blobs deleted.
   */
  deleteUnreferenced(rows: UnreferencedBlob[], cut: number, del: (r: UnreferencedBlob) => Promise<void>, now = Date.now()): Promise<UnreferencedBlob[]> {
    return this.held(async () => {
      const still = this.q('SELECT 1 FROM blobs WHERE hash = ? AND refs <= 0 AND zero_since <= ?');
      const doomed = rows.filter((r) => still.get(r.hash, cut) && !this.leases.exists(r.hash));
      await forEachLimit(doomed.filter((r) => r.pack === null && r.tier !== 2), DELETE_CONCURRENCY, async (r) => {
        await del(r);
        crashPoint('gc-deleted');
      });
      const delRow = this.q('DELETE FROM blobs WHERE hash = ? AND refs <= 0');
      for (const r of doomed) {
        if (r.pack !== null) this.packs.shrinkQ.run({ by: r.stored, now, id: r.pack }); // its share of the pack (of a frame, for framed entries)
        delRow.run(r.hash);
      }
      if (doomed.length) bumpCounter(this.db, GENERATION);
      return doomed;
    });
  }

  /** Revokes expired leases (by `now`) on the blobs named by these object keys (pack names have none). */
  revokeKeys(keys: string[], now: number): Promise<number> {
    return this.revoke(
      keys.filter((k) => k.length !== PACK_NAME_HEX).map((k) => Buffer.from(k, 'hex')),
      now,
    );
  }

  /**
   * I2, second half, for objects nothing points at (orphans, stale copies):
   * inside one write transaction, those still unwanted in `tier` and without
   * any lease are deleted (`del`). Answers the keys deleted and how many a
   * lease kept.
   */
  deleteUnwanted(tier: number, keys: string[], del: (key: string) => Promise<void>): Promise<{ deleted: string[]; kept: number }> {
    return this.held(async () => {
      let kept = 0;
      const doomed = keys.filter((k) => {
        if (this.view.wanted(tier, k, PACK_NAME_HEX)) return false;
        if (k.length !== PACK_NAME_HEX && this.leases.exists(Buffer.from(k, 'hex'))) {
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
  }

  /**
   * Expired leases (by `now`) whose blob is committed, or whose object
   * `gone` says is not there: nothing left for them to protect.
   */
  dropExpiredLeases(now: number, gone: (hash: Buffer) => Promise<boolean>): Promise<number> {
    return this.held(async () => {
      let n = 0;
      for (const h of this.leases.expiredHashes(now)) {
        if (this.refcounts.row(h) !== undefined || (await gone(h))) n += this.leases.dropExpired(h, now);
      }
      return n;
    });
  }

  // ---- node of a cluster: convergence and markers

  /** A lease and a marker record for an instance a node is about to reference (before the marker is written). */
  reserveInstance(token: string, m: MarkerRecord, expires: number, now: number): Promise<void> {
    return this.txn(() => {
      this.leases.take(token, [m.hash], expires);
      this.markers.record(m, now);
    });
  }

  /** I1 for convergence: references move from instance `from` to `to` if the lease is still held. */
  publishInstance(token: string, hash: Buffer, from: string, to: string, codec: number, stored: number): Promise<boolean> {
    return this.txn(() => {
      const ok = this.leases.held(token) > 0 && this.q('UPDATE blobs SET instance = ?, codec = ?, stored = ?, settled = NULL WHERE hash = ? AND instance = ? AND tier = 2').run(to, codec, stored, hash, from).changes > 0;
      this.leases.release(token);
      return ok;
    });
  }

  /** Undoes reserveInstance once the marker is deleted again. */
  unreserveInstance(token: string, m: MarkerRecord): Promise<void> {
    return this.txn(() => {
      this.markers.forget(m);
      this.leases.release(token);
    });
  }

  settle(hash: Buffer, instance: string): Promise<void> {
    return this.txn(() => void this.q('UPDATE blobs SET settled = 1 WHERE hash = ? AND instance = ?').run(hash, instance));
  }

  noteUnneededMarkers(now: number): Promise<void> {
    return this.txn(() => this.markers.noteUnneeded(now));
  }

  /**
   * Markers unneeded since before `cut`, deleted from the bucket (`del`) and
   * then from the record, in one write transaction that finds them still
   * unneeded; answers how many went.
   */
  deleteReleasedMarkers(cut: number, limit: number, del: (m: MarkerRecord) => Promise<void>): Promise<{ found: number; forgotten: number }> {
    return this.held(async () => {
      const rows = this.markers.released(cut, limit);
      await forEachLimit(rows, DELETE_CONCURRENCY, async (m) => {
        await del(m);
        crashPoint('gc-marker-deleted');
      });
      let forgotten = 0;
      for (const m of rows) forgotten += this.markers.forget(m);
      return { found: rows.length, forgotten };
    });
  }

  // ---- check --repair

  /**
   * Applies a repair computed from a snapshot, unless a commit or expunge
   * happened since (the generation counter moved: false, nothing done).
   */
  applyRepair(
    generation: number,
    fix: {
      counts: { hash: Buffer; refs: number }[];
      recreate: { hash: Buffer; domain: string; size: number; stored: number; codec: number; refs: number; chunks: Buffer | null }[];
      dropDangling: Buffer[];
      relivePacks: string[];
    },
    now = Date.now(),
  ): Promise<{ refcounts: number; rowsCreated: number; rowsDropped: number; packs: number } | null> {
    return this.txn(() => {
      if (counter(this.db, GENERATION) !== generation) return null;
      const done = { refcounts: 0, rowsCreated: 0, rowsDropped: 0, packs: 0 };
      const setRefs = this.q('UPDATE blobs SET refs = ?, zero_since = CASE WHEN ? = 0 THEN coalesce(zero_since, ?) ELSE NULL END WHERE hash = ?');
      for (const c of fix.counts) done.refcounts += setRefs.run(c.refs, c.refs, now, c.hash).changes;
      const ins = this.q(
        `INSERT INTO blobs(hash, domain, size, stored, codec, refs, created, zero_since, content_type, corrupt, chunks)
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0, ?) ON CONFLICT(hash) DO NOTHING`,
      );
      for (const r of fix.recreate) done.rowsCreated += ins.run(r.hash, r.domain, r.size, r.stored, r.codec, r.refs, now, r.chunks).changes;
      const drop = this.q('DELETE FROM blobs WHERE hash = ? AND refs <= 0');
      for (const h of fix.dropDangling) done.rowsDropped += drop.run(h).changes;
      // a pack's live bytes, recomputed here and now (tier and repack keep them exact in their own transactions)
      const relive = this.q('UPDATE packs SET live = (SELECT coalesce(sum(stored), 0) FROM blobs b WHERE b.pack = packs.id) WHERE name = ? AND retired IS NULL AND token IS NULL');
      for (const p of fix.relivePacks) done.packs += relive.run(p).changes;
      if (done.refcounts || done.rowsCreated) bumpCounter(this.db, GENERATION);
      return done;
    });
  }

  /** check --repair: objects found unwanted, deleted if still unwanted and without any lease (no revocation: a lease of any age keeps them). */
  repairUnwanted(tier: number, keys: string[], del: (key: string) => Promise<void>): Promise<{ deleted: string[]; kept: number }> {
    return this.deleteUnwanted(tier, keys, del);
  }
}

export { PACK_NAME_HEX };
