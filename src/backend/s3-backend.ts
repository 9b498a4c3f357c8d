import { Readable } from 'node:stream';
import type * as Sdk from '@aws-sdk/client-s3';
import { MailcasError } from '../errors.js';
import { newHasher } from '../util/hash.js';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from './backend.js';
import { KEY_RE, checkWritten } from './backend.js';

/** The S3 requests mailcas makes: input and output types by command name. */
interface Requests {
  AbortMultipartUpload: [Sdk.AbortMultipartUploadCommandInput, Sdk.AbortMultipartUploadCommandOutput];
  CompleteMultipartUpload: [Sdk.CompleteMultipartUploadCommandInput, Sdk.CompleteMultipartUploadCommandOutput];
  CreateBucket: [Sdk.CreateBucketCommandInput, Sdk.CreateBucketCommandOutput];
  CreateMultipartUpload: [Sdk.CreateMultipartUploadCommandInput, Sdk.CreateMultipartUploadCommandOutput];
  DeleteObject: [Sdk.DeleteObjectCommandInput, Sdk.DeleteObjectCommandOutput];
  GetObject: [Sdk.GetObjectCommandInput, Sdk.GetObjectCommandOutput];
  HeadBucket: [Sdk.HeadBucketCommandInput, Sdk.HeadBucketCommandOutput];
  HeadObject: [Sdk.HeadObjectCommandInput, Sdk.HeadObjectCommandOutput];
  ListObjectsV2: [Sdk.ListObjectsV2CommandInput, Sdk.ListObjectsV2CommandOutput];
  PutObject: [Sdk.PutObjectCommandInput, Sdk.PutObjectCommandOutput];
  UploadPart: [Sdk.UploadPartCommandInput, Sdk.UploadPartCommandOutput];
}
export type S3Request = keyof Requests;

let sdk: Promise<typeof Sdk> | null = null;

/**
 * The AWS SDK, loaded on first use: it adds about 20 MB to a process and
 * a tenth of a second to its start, which a store on local files (every
 * `ingest` of an LDA, every CLI command) should not pay.
 */
function loadSdk(): Promise<typeof Sdk> {
  // The SDK is pinned (README): its notice that later releases will need Node 22 is not for operators'
  // terminals, where every mailcas error is one line.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return (sdk ??= import('@aws-sdk/client-s3'));
}

/** Where a store's blobs live on S3 (kept in the store's config; credentials never are). */
export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket ('' or ending in '/'). */
  prefix: string;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
}

/** Objects up to this size are sent in one PutObject (read into memory and verified first); larger ones in parts of this size. */
export const S3_PART_BYTES = 8 * 1024 * 1024;

/** Parses s3://BUCKET[/PREFIX]. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new MailcasError('E_USAGE', `not an S3 location: ${JSON.stringify(url)} (expected s3://BUCKET[/PREFIX])`);
  const p = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: m[1], prefix: p ? `${p}/` : '' };
}

/**
 * Blobs as objects in an S3 bucket (AWS, Ceph RGW, any S3 API), under
 * PREFIX/blobs/<key>. A put is verified (size, digest) before anything is
 * visible: small objects are read and checked in memory, then sent with
 * If-None-Match: * (create-if-absent where the server honours it: Ceph and
 * AWS do); large ones go up in parts and are completed only once the whole
 * was checked, else aborted. Reads are ranged GETs. Errors are classified
 * here: a missing object is null, auth/bucket/request errors are permanent,
 * 5xx, throttling, timeouts and resets transient (RetryBackend retries those).
 * Credentials come from the standard AWS environment variables and files.
 */
export class S3Backend implements BlobBackend {
  readonly properties: BackendProperties = { name: 's3', atomicCreate: true, ranged: true, local: false };
  private readonly dir: string;
  private clientP: Promise<Sdk.S3Client> | null = null;

  constructor(readonly loc: S3Location) {
    this.dir = `${loc.prefix}blobs/`;
  }

  /** The SDK's client, made on first use (with the SDK itself). */
  client(): Promise<Sdk.S3Client> {
    return (this.clientP ??= loadSdk().then(
      (m) =>
        new m.S3Client({
          endpoint: this.loc.endpoint,
          region: this.loc.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
          forcePathStyle: this.loc.pathStyle ?? !!this.loc.endpoint,
          // plain bodies: aws-chunked uploads with trailing checksums are refused (411) or stored framed by some servers
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
          maxAttempts: 1, // retries are RetryBackend's, with one policy for every backend
        }),
    ));
  }

  /** Sends one request, named as the SDK names its command without "Command" ('PutObject'). */
  async send<N extends S3Request>(name: N, input: Requests[N][0]): Promise<Requests[N][1]> {
    const [m, client] = await Promise.all([loadSdk(), this.client()]);
    const Command = m[`${name}Command`] as unknown as new (i: Requests[N][0]) => Parameters<Sdk.S3Client['send']>[0];
    return (await client.send(new Command(input))) as Requests[N][1];
  }

  private keyOf(key: string): string {
    if (!KEY_RE.test(key)) throw new MailcasError('E_USAGE', `invalid blob key ${JSON.stringify(key)}`);
    return this.dir + key;
  }

  /** Creates the bucket when it is missing (init). */
  async ensureBucket(): Promise<void> {
    try {
      await this.send('HeadBucket', { Bucket: this.loc.bucket });
    } catch (e) {
      if (status(e) !== 404) throw classify(e, `bucket ${this.loc.bucket}`);
      try {
        await this.send('CreateBucket', { Bucket: this.loc.bucket });
      } catch (e2) {
        if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((e2 as { name?: string }).name ?? '')) throw classify(e2, `creating bucket ${this.loc.bucket}`);
      }
    }
  }

  async ensureBucketAndClose(): Promise<void> {
    try {
      await this.ensureBucket();
    } finally {
      await this.close();
    }
  }

  async put(key: string, src: PutSource, expect: PutExpect, opts: PutOptions = {}): Promise<boolean> {
    const k = this.keyOf(key);
    try {
      if (expect.size <= S3_PART_BYTES) {
        const body = await readVerified(key, src, expect);
        try {
          await this.send('PutObject', { Bucket: this.loc.bucket, Key: k, Body: body, ContentLength: body.length, ...(opts.overwrite ? {} : { IfNoneMatch: '*' }) });
        } catch (e) {
          if (!opts.overwrite && (status(e) === 412 || (e as { name?: string }).name === 'PreconditionFailed')) return false;
          throw e;
        }
        return true;
      }
      if (!opts.overwrite && (await this.stat(key))) return false;
      await this.multipart(k, key, src, expect);
      return true;
    } catch (e) {
      throw classify(e, `storing blob ${key}`);
    }
  }

  /** Uploads in parts, hashing as it goes; completes only if the whole is what the caller declared, else aborts (nothing visible). */
  private async multipart(k: string, key: string, src: PutSource, expect: PutExpect): Promise<void> {
    const { UploadId } = await this.send('CreateMultipartUpload', { Bucket: this.loc.bucket, Key: k });
    const parts: { PartNumber: number; ETag: string }[] = [];
    try {
      const h = newHasher();
      let n = 0;
      let pending: Buffer[] = [];
      let fill = 0;
      const flush = async (): Promise<void> => {
        if (!fill) return;
        const body = pending.length === 1 ? pending[0] : Buffer.concat(pending, fill);
        pending = [];
        fill = 0;
        const PartNumber = parts.length + 1;
        const r = await this.send('UploadPart', { Bucket: this.loc.bucket, Key: k, UploadId, PartNumber, Body: body, ContentLength: body.length });
        parts.push({ PartNumber, ETag: r.ETag ?? '' });
      };
      for await (const c of sourceChunks(src)) {
        n += c.length;
        if (n > expect.size) break;
        h.update(c);
        pending.push(Buffer.from(c)); // sources may reuse their buffers
        fill += c.length;
        if (fill >= S3_PART_BYTES) await flush();
      }
      checkWritten(key, n, h.digest(), expect);
      await flush();
      await this.send('CompleteMultipartUpload', { Bucket: this.loc.bucket, Key: k, UploadId, MultipartUpload: { Parts: parts } });
    } catch (e) {
      await this.send('AbortMultipartUpload', { Bucket: this.loc.bucket, Key: k, UploadId }).catch(() => {});
      throw e;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    const k = this.keyOf(key);
    try {
      if (range && range.end <= range.start) return (await this.stat(key)) ? Readable.from([]) : null;
      const r = await this.send('GetObject', { Bucket: this.loc.bucket, Key: k, ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}) });
      return r.Body as Readable;
    } catch (e) {
      if (notFound(e)) return null;
      if (range && status(e) === 416) return (await this.stat(key)) ? Readable.from([]) : null; // a range past the end: no bytes
      throw classify(e, `reading blob ${key}`);
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const r = await this.send('HeadObject', { Bucket: this.loc.bucket, Key: this.keyOf(key) });
      return { key, size: r.ContentLength ?? 0, mtimeMs: r.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (notFound(e)) return null;
      throw classify(e, `stat blob ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.send('DeleteObject', { Bucket: this.loc.bucket, Key: this.keyOf(key) });
    } catch (e) {
      if (notFound(e)) return;
      throw classify(e, `deleting blob ${key}`);
    }
  }

  async *list(): AsyncIterable<ObjectInfo> {
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.send('ListObjectsV2', { Bucket: this.loc.bucket, Prefix: this.dir, ContinuationToken, MaxKeys: 1000 });
      } catch (e) {
        throw classify(e, `listing ${this.loc.bucket}/${this.dir}`);
      }
      for (const o of page.Contents ?? []) {
        const key = (o.Key ?? '').slice(this.dir.length);
        if (KEY_RE.test(key)) yield { key, size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async close(): Promise<void> {
    if (this.clientP) (await this.clientP).destroy();
  }
}

/** Reads a small source whole and checks it against what the caller declared (nothing is sent otherwise). */
async function readVerified(key: string, src: PutSource, expect: PutExpect): Promise<Buffer> {
  const h = newHasher();
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of sourceChunks(src)) {
    n += c.length;
    if (n > expect.size) break;
    h.update(c);
    parts.push(Buffer.from(c));
  }
  checkWritten(key, n, h.digest(), expect);
  return Buffer.concat(parts, n);
}

/** The source's chunks; its own failure (a local read) is not the object store's, and is never retried as one. */
async function* sourceChunks(src: PutSource): AsyncGenerator<Buffer> {
  try {
    for await (const c of src.open()) yield c;
  } catch (e) {
    if (e instanceof MailcasError) throw e;
    throw new MailcasError('E_SHORT_WRITE', `the bytes to store could not be read: ${(e as Error).message}`, { cause: e });
  }
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function notFound(e: unknown): boolean {
  const name = (e as { name?: string })?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || (status(e) === 404 && name !== 'NoSuchBucket');
}

const PERMANENT = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'NoSuchBucket', 'InvalidBucketName', 'InvalidArgument', 'InvalidRequest', 'MalformedXML', 'AuthorizationHeaderMalformed', 'EntityTooLarge']);
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * The boundary: every S3 failure becomes an E_BACKEND with `transient` set
 * by what it is. Permanent: credentials, the bucket, a bad request (a retry
 * gets the same answer). Transient: 5xx, throttling (429/503 SlowDown),
 * request timeouts, refused or reset connections.
 */
export function classify(e: unknown, what: string): MailcasError {
  if (e instanceof MailcasError) return e;
  const name = (e as { name?: string; Code?: string })?.name ?? '';
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  const st = status(e);
  const transient =
    !PERMANENT.has(name) &&
    (TRANSIENT_CODES.has(code) ||
      (st !== undefined && (st >= 500 || st === 429 || st === 408)) ||
      ['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'TimeoutError', 'AbortError'].includes(name) ||
      (st === undefined && !PERMANENT.has(name)));
  const detail = [name, code, st ? `HTTP ${st}` : ''].filter(Boolean).join(' ');
  return new MailcasError('E_BACKEND', `${what}: ${detail}${(e as Error)?.message ? `: ${(e as Error).message}` : ''}`, { cause: e, transient });
}
