import type { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from './backend.js';

export interface RetryPolicy {
  /** First wait; each retry doubles it (with jitter) up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Give up (the last error, still transient) once an operation has been retried this long. */
  deadlineMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseDelayMs: 100, maxDelayMs: 5_000, deadlineMs: 30_000 };

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs fn again while it fails with a transient backend error (E_BACKEND,
 * transient), with exponential backoff and jitter, until the policy's
 * deadline; anything else is thrown at once. The one retry loop: the
 * wrapper below and requests made outside the backend contract use it.
 */
export async function retryTransient<T>(policy: RetryPolicy, fn: () => Promise<T>, sleep: (ms: number) => Promise<void> = defaultSleep): Promise<T> {
  const t0 = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const retryable = e instanceof MailcasError && e.code === 'E_BACKEND' && e.transient;
      const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt) * (0.5 + Math.random() / 2);
      if (!retryable || Date.now() - t0 + delay > policy.deadlineMs) throw e;
      await sleep(delay);
    }
  }
}

/**
 * Retries transient backend failures (E_BACKEND with transient set: 5xx,
 * throttling, timeouts, resets) with exponential backoff and jitter until a
 * deadline, restic-style: one wrapper with the backend interface, stacked on
 * any backend, instead of retry loops inside each. Permanent errors and
 * integrity failures pass at once. A put is retried by reopening its source;
 * a read is retried until its stream starts (a failure mid-stream reaches
 * the reader, which verifies what it got anyway); a listing until its first page.
 */
export class RetryBackend implements BlobBackend {
  constructor(
    readonly inner: BlobBackend,
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly sleep: (ms: number) => Promise<void> = defaultSleep,
  ) {}

  get properties(): BackendProperties {
    return this.inner.properties;
  }

  private retry<T>(fn: () => Promise<T>): Promise<T> {
    return retryTransient(this.policy, fn, this.sleep);
  }

  put(key: string, src: PutSource, expect: PutExpect, opts?: PutOptions): Promise<boolean> {
    return this.retry(() => this.inner.put(key, src, expect, opts));
  }
  get(key: string, range?: ByteRange): Promise<Readable | null> {
    return this.retry(() => this.inner.get(key, range));
  }
  stat(key: string): Promise<ObjectInfo | null> {
    return this.retry(() => this.inner.stat(key));
  }
  delete(key: string): Promise<void> {
    return this.retry(() => this.inner.delete(key));
  }
  async *list(): AsyncIterable<ObjectInfo> {
    let it!: AsyncIterator<ObjectInfo>;
    const first = await this.retry(async () => {
      it = this.inner.list()[Symbol.asyncIterator](); // a listing that failed is over: start a new one
      return it.next();
    });
    if (first.done) return;
    yield first.value;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
