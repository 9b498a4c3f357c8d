import type { Db } from '../meta/db.js';
import type { AsyncMutex } from '../util/async-mutex.js';

/**
 * Group commit: commits submitted in the same turn of the event loop share
 * one SQLite transaction (one fsync). Each submitter's promise resolves
 * only after that transaction is durable.
 */
export class CommitQueue<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;

  constructor(private readonly db: Db, private readonly lock: AsyncMutex, private readonly apply: (item: T) => R, private readonly maxBatch = 512) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      await this.lock.run(() => {
        let results: R[];
        try {
          results = this.db.transaction(() => batch.map((b) => this.apply(b.item)))();
        } catch (e) {
          for (const b of batch) b.reject(e);
          return;
        }
        batch.forEach((b, i) => b.resolve(results[i]));
      });
    }
  }
}
