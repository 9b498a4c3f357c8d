import crypto from 'node:crypto';
import { MailcasError } from '../errors.js';
import type { Readable } from 'node:stream';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from './backend.js';
import { RetryBackend, retryTransient, type RetryPolicy } from './retry-backend.js';
import { S3Backend, classify, type S3Location } from './s3-backend.js';
import { crashPoint } from '../util/crash-points.js';

/** A node's name in a cluster: part of its marker keys and of its private prefix. */
export const NODE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Where a node's own objects live in the bucket (its private prefix). */
export function nodePrefix(prefix: string, node: string): string {
  return `${prefix}nodes/${node}/`;
}

/** Hex characters of an instance id: 14 random, then 2 for the codec its bytes are stored with. */
export const INSTANCE_HEX = 16;

/** A fresh instance id for bytes stored with `codec` (the codec travels in the name, so another node can read them). */
export function newInstance(codec: number): string {
  return crypto.randomBytes(7).toString('hex') + codec.toString(16).padStart(2, '0');
}

/** The codec an instance's bytes are stored with. */
export function instanceCodec(instance: string): number {
  return parseInt(instance.slice(INSTANCE_HEX - 2), 16);
}

/**
 * The part of a bucket that the nodes of a cluster share (docs/SCALE-OUT.md):
 *
 *   PREFIX/shared/blobs/<K><I>          the bytes of instance I of blob K (an ordinary blob object)
 *   PREFIX/shared/refs/<K><I>/<node>/<t> empty marker: node holds (or ingest t may commit) a reference to it
 *   PREFIX/shared/tomb/<K><I>           empty tombstone: instance I takes no new references
 *
 * Each node's own blobs (small parts) stay under PREFIX/nodes/<node>/. This
 * class only names and performs the single-object operations and listings
 * the protocol is made of; the order they run in is the protocol's
 * (ingest, gc, collect), kept where those are.
 */
export class SharedBucket {
  /** Instance objects, keyed K+I (hex): reads, verified puts, deletes, listings as for any blob backend. */
  readonly objects: BlobBackend;
  /** Requests sent to the shared part of the bucket (first attempts; retries not counted): what the protocol costs. */
  readonly requests = { put: 0, get: 0, head: 0, list: 0, delete: 0 };
  private readonly s3: S3Backend;
  private readonly base: string;

  constructor(
    readonly loc: S3Location,
    readonly node: string,
    private readonly retry: RetryPolicy,
  ) {
    if (!NODE_NAME_RE.test(node)) throw new MailcasError('E_USAGE', `invalid node name ${JSON.stringify(node)} (lower-case letters, digits, - and _, at most 63)`);
    this.base = `${loc.prefix}shared/`;
    this.s3 = new S3Backend({ ...loc, prefix: this.base });
    this.objects = new CountedBackend(new RetryBackend(this.s3, retry), this.requests);
  }

  /** Instances of blob K now in the bucket (one LIST). */
  async instances(key: Buffer): Promise<{ instance: string; size: number }[]> {
    const hex = key.toString('hex');
    const out: { instance: string; size: number }[] = [];
    for (const k of await this.listKeys(`blobs/${hex}`, 1000)) {
      const inst = k.key.slice(`blobs/${hex}`.length);
      if (inst.length === INSTANCE_HEX && /^[0-9a-f]+$/.test(inst)) out.push({ instance: inst, size: k.size });
    }
    return out;
  }

  markerKey(key: Buffer, instance: string, token: string): string {
    return `refs/${key.toString('hex')}${instance}/${this.node}/${encodeURIComponent(token)}`;
  }

  putMarker(key: Buffer, instance: string, token: string): Promise<void> {
    return this.putEmpty(this.markerKey(key, instance, token));
  }

  deleteMarker(key: Buffer, instance: string, token: string): Promise<void> {
    return this.del(this.markerKey(key, instance, token));
  }

  /**
   * Steps R2-R4 after the marker's record: writes this node's marker on the
   * instance, then answers the object's stored size if the instance may be
   * referenced (no tombstone, object present), else null.
   */
  async markUsable(key: Buffer, instance: string, token: string): Promise<number | null> {
    await this.putMarker(key, instance, token);
    crashPoint('marker-written');
    const objectKey = key.toString('hex') + instance;
    if (await this.tombstoned(objectKey)) return null;
    return (await this.objects.stat(objectKey))?.size ?? null;
  }

  /** The tokens of this node's markers on an instance that are in the bucket (one LIST). */
  async ownMarkers(key: Buffer, instance: string): Promise<string[]> {
    const prefix = `refs/${key.toString('hex')}${instance}/${this.node}/`;
    return (await this.listKeys(prefix, 1000)).map((o) => decodeURIComponent(o.key.slice(prefix.length)));
  }

  /** Whether any node has a marker on the instance (one LIST of at most one key). */
  async referenced(objectKey: string): Promise<boolean> {
    return (await this.listKeys(`refs/${objectKey}/`, 1)).length > 0;
  }

  /**
   * Every marker of a node that has left the cluster for good (its users
   * moved, its store retired), and every object of its own: deleted, or
   * counted with `dryRun`. The instances only it marked are then the
   * collector's.
   */
  async forgetNode(node: string, dryRun: boolean): Promise<{ markers: number; objects: number; bytes: number }> {
    if (!NODE_NAME_RE.test(node)) throw new MailcasError('E_USAGE', `invalid node name ${JSON.stringify(node)}`);
    const r = { markers: 0, objects: 0, bytes: 0 };
    for await (const o of this.listAll('refs/')) {
      if (o.key.split('/')[2] !== node) continue;
      if (!dryRun) await this.del(o.key);
      r.markers++;
    }
    // the node's own objects live beside shared/, under nodes/<node>/
    for await (const o of this.listUnder(nodePrefix(this.loc.prefix, node))) {
      if (!dryRun) await this.delAbsolute(o.key);
      r.objects++;
      r.bytes += o.size;
    }
    return r;
  }

  tombstoned(objectKey: string): Promise<boolean> {
    return this.exists(`tomb/${objectKey}`);
  }
  putTombstone(objectKey: string): Promise<void> {
    return this.putEmpty(`tomb/${objectKey}`);
  }
  deleteTombstone(objectKey: string): Promise<void> {
    return this.del(`tomb/${objectKey}`);
  }
  async *tombstones(): AsyncGenerator<string> {
    for await (const o of this.listAll('tomb/')) yield o.key.slice('tomb/'.length);
  }

  close(): Promise<void> {
    return this.objects.close();
  }

  // ---- single requests, retried like every backend request (transient failures only)

  private withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryTransient(this.retry, () =>
      fn().catch((e: unknown) => {
        throw classify(e, what);
      }),
    );
  }

  private putEmpty(k: string): Promise<void> {
    this.requests.put++;
    return this.withRetry(`writing ${k}`, async () => {
      await this.s3.send('PutObject', { Bucket: this.loc.bucket, Key: this.base + k, Body: Buffer.alloc(0), ContentLength: 0 });
    });
  }

  private del(k: string): Promise<void> {
    return this.delAbsolute(this.base + k);
  }

  private delAbsolute(key: string): Promise<void> {
    this.requests.delete++;
    return this.withRetry(`deleting ${key}`, async () => {
      try {
        await this.s3.send('DeleteObject', { Bucket: this.loc.bucket, Key: key });
      } catch (e) {
        if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return;
        throw e;
      }
    });
  }

  private exists(k: string): Promise<boolean> {
    this.requests.head++;
    return this.withRetry(`looking up ${k}`, async () => {
      try {
        await this.s3.send('HeadObject', { Bucket: this.loc.bucket, Key: this.base + k });
        return true;
      } catch (e) {
        const name = (e as { name?: string }).name;
        if (name === 'NotFound' || name === 'NoSuchKey' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw e;
      }
    });
  }

  private listKeys(prefix: string, max: number): Promise<ObjectInfo[]> {
    this.requests.list++;
    return this.withRetry(`listing ${this.base}${prefix}`, async () => {
      const page = await this.s3.send('ListObjectsV2', { Bucket: this.loc.bucket, Prefix: this.base + prefix, MaxKeys: max });
      return (page.Contents ?? []).map((o) => ({ key: (o.Key ?? '').slice(this.base.length), size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 }));
    });
  }

  /** Every object under `prefix` inside shared/, keys relative to shared/. */
  private async *listAll(prefix: string): AsyncGenerator<ObjectInfo> {
    for await (const o of this.listUnder(this.base + prefix)) yield { ...o, key: o.key.slice(this.base.length) };
  }

  /** Every object whose key starts with `prefix` (a key in the bucket), page by page. */
  private async *listUnder(prefix: string): AsyncGenerator<ObjectInfo> {
    let ContinuationToken: string | undefined;
    do {
      this.requests.list++;
      const page = await this.withRetry(`listing ${prefix}`, () => this.s3.send('ListObjectsV2', { Bucket: this.loc.bucket, Prefix: prefix, ContinuationToken, MaxKeys: 1000 }));
      for (const o of page.Contents ?? []) yield { key: o.Key ?? '', size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 };
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }
}

/** Counts the requests made through a backend. */
class CountedBackend implements BlobBackend {
  constructor(
    private readonly inner: BlobBackend,
    private readonly n: SharedBucket['requests'],
  ) {}
  get properties(): BackendProperties {
    return this.inner.properties;
  }
  put(key: string, src: PutSource, expect: PutExpect, opts?: PutOptions): Promise<boolean> {
    this.n.put++;
    return this.inner.put(key, src, expect, opts);
  }
  get(key: string, range?: ByteRange): Promise<Readable | null> {
    this.n.get++;
    return this.inner.get(key, range);
  }
  stat(key: string): Promise<ObjectInfo | null> {
    this.n.head++;
    return this.inner.stat(key);
  }
  delete(key: string): Promise<void> {
    this.n.delete++;
    return this.inner.delete(key);
  }
  list(): AsyncIterable<ObjectInfo> {
    this.n.list++;
    return this.inner.list();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
