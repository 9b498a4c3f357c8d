import { immediate, sqliteError, type Db } from './db.js';
import { crashPoint } from '../util/crash-points.js';
import type { WriteLock } from './db.js';

/**
 * Group commit: submissions that arrive close together share one SQLite
 * transaction (one fsync). Each submitter's promise resolves only after
 * that transaction is durable. When `othersComing()` says more submissions
 * are on their way (other ingests in flight), the flush waits up to
 * `lingerMs` for them; a lone submission is committed at once.
 *
 * Each item is applied inside a savepoint of its own: an item that fails
 * (its leases were reclaimed, a constraint) is rolled back and rejected
 * alone while the rest of the batch commits. The transaction is IMMEDIATE,
 * so contention with other processes waits (busy timeout) at BEGIN instead
 * of failing half-way; what still fails is mapped to a transient error.
 */
export class CommitQueue<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private flushing = false;

  constructor(
    private readonly db: Db,
    private readonly lock: WriteLock,
    apply: (item: T) => R,
    private readonly othersComing: (pending: number) => boolean = () => false,
    /**
     * Whether an item must be on disk when its promise resolves. A batch of
     * items that need not be (leases: they must be visible to other writers,
     * and a crash ends the ingests they protect anyway) commits without the
     * WAL fsync; the next durable commit syncs them with it.
     */
    private readonly durable: (item: T) => boolean = () => true,
    private readonly lingerMs = 2,
    private readonly maxBatch = 256,
  ) {
    this.one = db.transaction((item: T): R => apply(item));
  }

  /** Applies one item inside a savepoint (a nested better-sqlite3 transaction). */
  private readonly one: (item: T) => R;



  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush picks new items up
    const wait = this.pending.length < this.maxBatch && this.othersComing(this.pending.length);
    if (this.timer) {
      if (wait) return;
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = wait ? setTimeout(() => void this.flush(), this.lingerMs) : setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.timer = null;
    this.flushing = true;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.maxBatch);
        if (process.env.MAILCAS_DEBUG_BATCH) process.stderr.write(`batch ${batch.length}\n`);
        await this.lock.run(() => {
          let results: ({ ok: true; r: R } | { ok: false; e: unknown })[];
          const lazy = !batch.some((b) => this.durable(b.item));
          try {
            if (lazy) this.db.pragma('synchronous = NORMAL');
            crashPoint('before-commit');
            results = immediate(this.db, () =>
              batch.map((b) => {
                try {
                  return { ok: true as const, r: this.one(b.item) };
                } catch (e) {
                  return { ok: false as const, e: sqliteError(e) };
                }
              }),
            );
          } catch (e) {
            for (const b of batch) b.reject(e);
            return;
          } finally {
            // every other writer on this connection (expunge, gc, repair) commits durably
            // (this can only fail on a connection closed under it, where there is nothing left to make durable)
            if (lazy && this.db.open) this.db.pragma('synchronous = FULL');
          }
          crashPoint('after-commit');
          batch.forEach((b, i) => {
            const x = results[i];
            if (x.ok) b.resolve(x.r);
            else b.reject(x.e);
          });
        });
      }
    } finally {
      this.flushing = false;
    }
  }
}
