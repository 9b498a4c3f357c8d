import { MailcasError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { TIER_BATCH, WRITE_BEHIND_INTERVAL_MS } from '../limits.js';
import { runTier, type TierDeps, type TierReport } from './tier.js';

/**
 * Write-behind: the hot tier acknowledges, and long-running processes (LMTP,
 * services) upload the backlog in the background, a step at a time, every
 * second; past a byte budget new mail waits (a temporary failure) instead of
 * filling the disk.
 */
export class WriteBehind {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private backlog = { at: 0, bytes: 0 };

  constructor(
    private readonly deps: TierDeps & { log: Logger },
    private readonly maxBacklog: number,
  ) {}

  /** Starts uploading in the background. */
  start(): void {
    this.stopped = false;
    const tick = (): void => {
      if (this.stopped) return;
      this.running = runTier(this.deps, { olderThanMs: 0, limit: TIER_BATCH })
        .then((r) => {
          if (r.objects + r.packed) this.deps.log.info('write-behind', { uploaded: r.objects + r.packed, pendingUploads: r.pendingUploads, pendingBytes: r.pendingBytes });
        })
        .catch((e: Error) => this.deps.log.warn('write-behind-failed', { error: e.message }))
        .finally(() => {
          this.running = null;
          if (!this.stopped) this.timer = setTimeout(tick, WRITE_BEHIND_INTERVAL_MS).unref();
        });
    };
    this.timer = setTimeout(tick, WRITE_BEHIND_INTERVAL_MS).unref();
  }

  /** Stops, after the step in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Back-pressure: E_BACKEND (transient) while more than the budget waits for the object store. */
  check(): void {
    const now = Date.now();
    if (now - this.backlog.at > 1000) this.backlog = { at: now, bytes: this.deps.index.view.pending().bytes };
    if (this.backlog.bytes > this.maxBacklog) {
      throw new MailcasError('E_BACKEND', `the write-behind backlog is full (${this.backlog.bytes} bytes waiting for the object store, the limit is ${this.maxBacklog}): try again later`, { transient: true });
    }
  }
}

/** Uploads everything still only in the hot tier, now: tier runs until nothing is pending or a run moves nothing. */
export async function flushAll(deps: TierDeps): Promise<TierReport> {
  let total: TierReport | null = null;
  for (;;) {
    const r = await runTier(deps, { olderThanMs: 0, minSize: 0 });
    total = total ? mergeTier(total, r) : r;
    if (r.pendingUploads === 0 || r.objects + r.packed === 0) return total;
  }
}

function mergeTier(a: TierReport, b: TierReport): TierReport {
  return {
    dryRun: a.dryRun,
    objects: a.objects + b.objects,
    objectBytes: a.objectBytes + b.objectBytes,
    packed: a.packed + b.packed,
    packedBytes: a.packedBytes + b.packedBytes,
    recompressed: a.recompressed + b.recompressed,
    recompressSavedBytes: a.recompressSavedBytes + b.recompressSavedBytes,
    packs: a.packs + b.packs,
    keptLeased: a.keptLeased + b.keptLeased,
    lost: a.lost + b.lost,
    corrupt: [...a.corrupt, ...b.corrupt],
    pendingUploads: b.pendingUploads,
    pendingBytes: b.pendingBytes,
  };
}
