import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { S3Backend, type S3Location } from '../src/backend/s3-backend.js';

const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));

/**
 * The S3 server benchmarks use: the one in $S3_ENDPOINT (S3_ACCESS_KEY,
 * S3_SECRET_KEY), else the project's own Ceph test cluster, started as root
 * by scripts/ceph-rgw-up.sh. Sets the standard AWS variables from them.
 */
export function ensureS3(): void {
  if (!process.env.S3_ENDPOINT) {
    const env = execFileSync('bash', [path.join(ROOT, 'scripts', 'ceph-rgw-up.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const l of env.split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(l);
      if (m) process.env[m[1]] = m[2];
    }
  }
  process.env.AWS_ACCESS_KEY_ID ??= process.env.S3_ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY ??= process.env.S3_SECRET_KEY;
}

/** A new bucket on that server. */
export async function benchBucket(): Promise<S3Location & { endpoint: string }> {
  const loc = { bucket: `mailcas-bench-${crypto.randomBytes(4).toString('hex')}`, prefix: '', endpoint: process.env.S3_ENDPOINT!, pathStyle: true };
  await new S3Backend(loc).ensureBucketAndClose();
  return loc;
}
