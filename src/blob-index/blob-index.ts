import type { Statement } from 'better-sqlite3';
import { MailcasError } from '../errors.js';
import { bumpCounter, counter, type Db, type WriteLock } from '../meta/db.js';
import { GENERATION } from '../meta/schema.js';
import { forEachLimit } from '../util/pool.js';
import { Refcounts, type BlobRefInfo, type BlobRow } from './refcounts.js';
import { Leases } from './leases.js';
import { Markers, type MarkerRecord } from './markers.js';
import { PACK_NAME_HEX, Packs, type PackEntryRow } from './packs.js';
import { BlobIndexView } from './index-view.js';
import { IndexTables } from './index-tables.js';
import { Retire } from './retire.js';
import { SharedInstances } from './shared-instances.js';

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
  /** gc's and check --repair's transitions: revoke, delete, take back. */
  readonly retire: Retire;
  /** Node of a cluster: shared instances and reference markers. */
  readonly instances: SharedInstances;
  private readonly t: IndexTables;

  constructor(
    readonly db: Db,
    lock: WriteLock,
  ) {
    this.t = new IndexTables(db, lock);
    ({ refcounts: this.refcounts, leases: this.leases, markers: this.markers, packs: this.packs, view: this.view } = this.t);
    this.retire = new Retire(this.t);
    this.instances = new SharedInstances(this.t);
  }

  private q(sql: string): Statement {
    return this.t.q(sql);
  }

  private txn<T>(fn: () => T): Promise<T> {
    return this.t.txn(fn);
  }

  private held<T>(fn: () => Promise<T>): Promise<T> {
    return this.t.held(fn);
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

  /**
   * A copy's references (COPY, MOVE; inside its transaction): the blobs are
   * referenced by the message copied, committed, so their rows and objects
   * are there and gc cannot take them while this transaction holds the lock.
   */
  copyRefs(refs: Iterable<{ hash: Buffer; count: number }>): void {
    for (const r of refs) this.refcounts.adjust(r.hash, r.count);
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



  // ---- check --repair























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
    return this.retire.deleteUnwanted(tier, keys, del);
  }
}

export { PACK_NAME_HEX };
export type { UnreferencedBlob } from './retire.js';
