import type { Db } from '../meta/db.js';
import type { AsyncMutex } from '../util/async-mutex.js';

/**
 * Group commit: submissions that arrive close together share one SQLite
 * transaction (one fsync). Each submitter's promise resolves only after
 * that transaction is durable. When `othersComing()` says more submissions
 * are on their way (other ingests in flight), the flush waits up to
 * `lingerMs` for them; a lone submission is committed at once.
 */
export class CommitQueue<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private flushing = false;

  constructor(
    private readonly db: Db,
    private readonly lock: AsyncMutex,
    private readonly apply: (item: T) => R,
    private readonly othersComing: (pending: number) => boolean = () => false,
    private readonly lingerMs = 2,
    private readonly maxBatch = 256,
  ) {}

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
    } finally {
      this.flushing = false;
    }
  }
}
