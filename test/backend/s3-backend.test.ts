// The S3 backend against a real S3 server (Ceph RADOS Gateway, started by test/global-setup.ts):
// the one conformance suite, plain and behind the retry wrapper, and the error boundary.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { S3Backend, classify, parseS3Url } from '../../src/backend/s3-backend.js';
import { RetryBackend } from '../../src/backend/retry-backend.js';
import { bufferSource } from '../../src/backend/backend.js';
import { hashBuffer } from '../../src/util/hash.js';
import { backendConformance } from './conformance.js';
import { freshBucket, s3Env } from '../s3-env.js';

const haveS3 = s3Env() !== null;

describe.runIf(haveS3)('S3 backend on Ceph RGW', () => {
  backendConformance('s3', async () => ({ backend: new S3Backend(await freshBucket()) }));
  backendConformance('s3 with a prefix, behind the retry wrapper', async () => ({ backend: new RetryBackend(new S3Backend(await freshBucket('tenant-a/store-1'))) }));

  it('a large object goes up in parts, verified before it is completed: a wrong digest leaves nothing, not even an upload in progress', async () => {
    const loc = await freshBucket();
    const b = new S3Backend(loc);
    const big = Buffer.alloc(20 * 1024 * 1024 + 123, 7);
    const key = hashBuffer(big).toString('hex');
    const err = await b.put(key, bufferSource(big), { size: big.length, digest: hashBuffer(Buffer.from('other')) }).catch((e) => e);
    expect(err.code).toBe('E_INTEGRITY');
    expect(await b.stat(key)).toBeNull();
    const { ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
    const ups = await (await b.client()).send(new ListMultipartUploadsCommand({ Bucket: loc.bucket }));
    expect(ups.Uploads ?? []).toEqual([]);
    expect(await b.put(key, bufferSource(big), { size: big.length, digest: hashBuffer(big) })).toBe(true);
    expect(await b.put(key, bufferSource(big), { size: big.length, digest: hashBuffer(big) })).toBe(false);
    const r = await b.get(key, { start: 20 * 1024 * 1024, end: 20 * 1024 * 1024 + 123 });
    const chunks: Buffer[] = [];
    for await (const c of r!) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(big.subarray(20 * 1024 * 1024))).toBe(true);
    await b.close();
  });

  it('errors are classified at the boundary: bad credentials and a missing bucket are permanent', async () => {
    const loc = await freshBucket();
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong';
    const bad = new S3Backend(loc);
    const e1 = await bad.stat('ab'.repeat(32)).catch((e) => e);
    process.env.AWS_SECRET_ACCESS_KEY = saved;
    await bad.close();
    expect({ code: e1.code, transient: e1.transient }).toEqual({ code: 'E_BACKEND', transient: false });
    const nob = new S3Backend({ ...loc, bucket: 'mailcas-no-such-bucket-here' });
    const e2 = await nob.put('ab'.repeat(32), bufferSource(Buffer.from('x')), { size: 1, digest: hashBuffer(Buffer.from('x')) }).catch((e) => e);
    expect({ code: e2.code, transient: e2.transient }).toEqual({ code: 'E_BACKEND', transient: false });
    await nob.close();
  });
});

describe('S3 error boundary (no server needed)', () => {
  it('a server that is not there is a transient failure; the retry wrapper retries it until its deadline', async () => {
    const port = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    const b = new S3Backend({ bucket: 'nowhere', prefix: '', endpoint: `http://127.0.0.1:${port}`, pathStyle: true });
    const e = await b.stat('ab'.repeat(32)).catch((x) => x);
    expect({ code: e.code, transient: e.transient }).toEqual({ code: 'E_BACKEND', transient: true });
    let sleeps = 0;
    const r = new RetryBackend(b, { baseDelayMs: 10, maxDelayMs: 20, deadlineMs: 200 }, async (ms) => {
      sleeps++;
      await new Promise((res) => setTimeout(res, ms));
    });
    const e2 = await r.stat('ab'.repeat(32)).catch((x) => x);
    expect(e2.transient).toBe(true);
    expect(sleeps).toBeGreaterThan(2);
    await b.close();
  });

  it('throttling and 5xx are transient; auth and request errors permanent; s3:// locations parse', () => {
    const err = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    expect(classify(err('SlowDown', 503), 'x').transient).toBe(true);
    expect(classify(err('InternalError', 500), 'x').transient).toBe(true);
    expect(classify(err('AccessDenied', 403), 'x').transient).toBe(false);
    expect(classify(err('NoSuchBucket', 404), 'x').transient).toBe(false);
    expect(classify(err('InvalidRequest', 400), 'x').transient).toBe(false);
    expect(classify(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'x').transient).toBe(true);
    expect(parseS3Url('s3://mail-blobs/eu/store1/')).toEqual({ bucket: 'mail-blobs', prefix: 'eu/store1/' });
    expect(parseS3Url('s3://mail-blobs')).toEqual({ bucket: 'mail-blobs', prefix: '' });
    expect(() => parseS3Url('http://x/y')).toThrow(/expected s3:\/\/BUCKET/);
  });
});
