import { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from './backend.js';

export interface FaultHooks {
  /** Called before a put reaches the wrapped backend; throw to fail it. */
  beforePut?(key: string): Promise<void> | void;
  /** Called after a put succeeded on the wrapped backend (e.g. to pause an ingest between its blob write and its commit). */
  afterPut?(key: string): Promise<void> | void;
  beforeGet?(key: string): Promise<void> | void;
  beforeDelete?(key: string): Promise<void> | void;
  /** Called after a delete reached the wrapped backend (e.g. to crash between a gc's object deletion and its commit). */
  afterDelete?(key: string): Promise<void> | void;
  /** Fail each operation with this probability (transient E_BACKEND). */
  failRate?: number;
  /** Delay each operation by up to this many ms (uniform). */
  maxDelayMs?: number;
  /** Cut a read short (the stream ends early) with this probability. */
  shortReadRate?: number;
  /** Flip one bit of a read's bytes with this probability. */
  corruptRate?: number;
}

/**
 * A wrapper that injects failures and pauses (after Dovecot's fs-randomfail):
 * used by tests for outages, races and crashes. Passes everything else through.
 */
export class FaultBackend implements BlobBackend {
  constructor(private readonly inner: BlobBackend, public hooks: FaultHooks = {}) {}

  get properties(): BackendProperties {
    return { ...this.inner.properties, name: `fault(${this.inner.properties.name})` };
  }

  private maybeFail(op: string): void {
    if (this.hooks.failRate && Math.random() < this.hooks.failRate) {
      throw new MailcasError('E_BACKEND', `injected ${op} failure`, { transient: true });
    }
  }

  async put(key: string, src: PutSource, expect: PutExpect, opts?: PutOptions): Promise<boolean> {
    await this.hooks.beforePut?.(key);
    await this.delay();
    this.maybeFail('put');
    const r = await this.inner.put(key, src, expect, opts);
    await this.hooks.afterPut?.(key);
    return r;
  }
  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    await this.hooks.beforeGet?.(key);
    await this.delay();
    this.maybeFail('get');
    const r = await this.inner.get(key, range);
    const { shortReadRate = 0, corruptRate = 0 } = this.hooks;
    if (!r || (!shortReadRate && !corruptRate)) return r;
    const short = Math.random() < shortReadRate;
    const corrupt = Math.random() < corruptRate;
    if (!short && !corrupt) return r;
    // the bytes as read, then damaged: a prefix only, or one bit flipped somewhere
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(c as Buffer);
    let b = Buffer.concat(chunks);
    if (short && b.length) b = b.subarray(0, Math.floor(Math.random() * b.length));
    if (corrupt && b.length) {
      b = Buffer.from(b);
      b[Math.floor(Math.random() * b.length)] ^= 1 << Math.floor(Math.random() * 8);
    }
    return Readable.from([b]);
  }

  private async delay(): Promise<void> {
    if (this.hooks.maxDelayMs) await new Promise((res) => setTimeout(res, Math.random() * this.hooks.maxDelayMs!));
  }
  stat(key: string): Promise<ObjectInfo | null> {
    this.maybeFail('stat');
    return this.inner.stat(key);
  }
  async delete(key: string): Promise<void> {
    await this.hooks.beforeDelete?.(key);
    this.maybeFail('delete');
    await this.inner.delete(key);
    await this.hooks.afterDelete?.(key);
  }
  list(): AsyncIterable<ObjectInfo> {
    return this.inner.list();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
