import type { Readable } from 'node:stream';
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
    this.maybeFail('put');
    const r = await this.inner.put(key, src, expect, opts);
    await this.hooks.afterPut?.(key);
    return r;
  }
  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    await this.hooks.beforeGet?.(key);
    this.maybeFail('get');
    return this.inner.get(key, range);
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
