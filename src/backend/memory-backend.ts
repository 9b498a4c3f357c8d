import { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';
import { newHasher } from '../util/hash.js';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from './backend.js';
import { KEY_RE, checkWritten } from './backend.js';

/** Objects in a Map: for tests and for analysis runs that store nothing durable. */
export class MemoryBackend implements BlobBackend {
  readonly properties: BackendProperties = { name: 'memory', atomicCreate: true, ranged: true, local: true };
  private readonly objects = new Map<string, { data: Buffer; mtimeMs: number }>();

  async put(key: string, src: PutSource, expect: PutExpect, opts: PutOptions = {}): Promise<boolean> {
    if (!KEY_RE.test(key)) throw new MailcasError('E_USAGE', `invalid blob key ${JSON.stringify(key)}`);
    if (this.objects.has(key) && !opts.overwrite) return false;
    const parts: Buffer[] = [];
    const h = newHasher();
    let n = 0;
    for await (const c of src.open()) {
      n += c.length;
      if (n > expect.size) break;
      h.update(c);
      parts.push(Buffer.from(c));
    }
    checkWritten(key, n, h.digest(), expect);
    if (this.objects.has(key) && !opts.overwrite) return false;
    this.objects.set(key, { data: Buffer.concat(parts), mtimeMs: Date.now() });
    return true;
  }

  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    const o = this.objects.get(key);
    if (!o) return null;
    const d = range ? o.data.subarray(range.start, Math.max(range.start, range.end)) : o.data;
    return Readable.from(d.length ? [d] : []);
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const o = this.objects.get(key);
    return o ? { key, size: o.data.length, mtimeMs: o.mtimeMs } : null;
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async *list(): AsyncIterable<ObjectInfo> {
    for (const [key, o] of [...this.objects]) yield { key, size: o.data.length, mtimeMs: o.mtimeMs };
  }

  async close(): Promise<void> {}
}
