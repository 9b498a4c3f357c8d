import type { Readable } from 'node:stream';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from './backend.js';

/**
 * Adds a fixed delay to every request of the wrapped backend: what an
 * object store across a network costs per round trip. Benchmarks and tests
 * use it to show that reads overlap (latency costs bandwidth, not time).
 * Counts requests by kind.
 */
export class LatencyBackend implements BlobBackend {
  readonly requests = { put: 0, get: 0, stat: 0, delete: 0, list: 0 };
  /** Requests waiting at once, now and at most. */
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly inner: BlobBackend,
    public delayMs: number,
  ) {}

  get properties(): BackendProperties {
    return { ...this.inner.properties, name: `latency(${this.inner.properties.name})`, local: false };
  }

  private async wait(): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    } finally {
      this.inFlight--;
    }
  }

  async put(key: string, src: PutSource, expect: PutExpect, opts?: PutOptions): Promise<boolean> {
    this.requests.put++;
    await this.wait();
    return this.inner.put(key, src, expect, opts);
  }
  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    this.requests.get++;
    await this.wait();
    return this.inner.get(key, range);
  }
  async stat(key: string): Promise<ObjectInfo | null> {
    this.requests.stat++;
    await this.wait();
    return this.inner.stat(key);
  }
  async delete(key: string): Promise<void> {
    this.requests.delete++;
    await this.wait();
    return this.inner.delete(key);
  }
  async *list(): AsyncIterable<ObjectInfo> {
    this.requests.list++;
    await this.wait();
    yield* this.inner.list();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
