import type { Statement } from 'better-sqlite3';
import { immediate, statementCache, writeTxn, type Db, type WriteLock } from '../meta/db.js';
import { Refcounts } from './refcounts.js';
import { Leases } from './leases.js';
import { Markers } from './markers.js';
import { Packs } from './packs.js';
import { BlobIndexView } from './index-view.js';

/** The blob index's tables and its two kinds of write transaction, shared by its transition groups. */
export class IndexTables {
  readonly refcounts: Refcounts;
  readonly leases: Leases;
  readonly markers: Markers;
  readonly packs: Packs;
  readonly view: BlobIndexView;
  /** Prepared statements by their SQL (the index's transitions share them). */
  readonly q: (sql: string) => Statement;

  constructor(
    readonly db: Db,
    private readonly lock: WriteLock,
  ) {
    this.refcounts = new Refcounts(db);
    this.leases = new Leases(db);
    this.markers = new Markers(db);
    this.packs = new Packs(db);
    this.view = new BlobIndexView(db);
    this.q = statementCache(db);
  }


  /** One short IMMEDIATE write transaction under this process's write lock. */
  txn<T>(fn: () => T): Promise<T> {
    return this.lock.run(() => immediate(this.db, fn));
  }

  /** A write transaction held across fn's awaits (backend deletions): no lease can be taken meanwhile. */
  held<T>(fn: () => Promise<T>): Promise<T> {
    return writeTxn(this.db, this.lock, false, fn);
  }
}
