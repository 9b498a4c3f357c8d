import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { S3Backend, type S3Location } from '../src/backend/s3-backend.js';

/** The S3 server the tests use (started by test/global-setup.ts), or null when there is none. */
export function s3Env(): { endpoint: string; region: string } | null {
  if (!process.env.S3_ENDPOINT) return null;
  // the SDK reads credentials from the standard variables, as mailcas does in production
  process.env.AWS_ACCESS_KEY_ID ??= process.env.S3_ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY ??= process.env.S3_SECRET_KEY;
  return { endpoint: process.env.S3_ENDPOINT, region: process.env.S3_REGION ?? 'us-east-1' };
}

/** A fresh bucket (created) for one test. */
export async function freshBucket(prefix = ''): Promise<S3Location> {
  const env = s3Env()!;
  const loc: S3Location = { bucket: `mailcas-test-${crypto.randomBytes(6).toString('hex')}`, prefix, endpoint: env.endpoint, region: env.region, pathStyle: true };
  const b = new S3Backend(loc);
  await b.ensureBucket();
  await b.close();
  return loc;
}

/** Every key in the bucket (under the location's prefix). */
export async function bucketKeys(loc: S3Location): Promise<string[]> {
  const b = new S3Backend(loc);
  const keys: string[] = [];
  for await (const o of b.list()) keys.push(o.key);
  await b.close();
  return keys;
}

/** The test cluster's radosgw (scripts/ceph-rgw-up.sh): whether this run can stop it and start it again. */
const RGW_DIR = process.env.CEPH_RGW_DIR ?? '/tmp/mailcas-ceph-rgw';
export const canRestartRgw = (): boolean => s3Env() !== null && fs.existsSync(path.join(RGW_DIR, 'run', 'client.rgw.a.pid'));

export function stopRgw(): void {
  const pid = Number(fs.readFileSync(path.join(RGW_DIR, 'run', 'client.rgw.a.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    execFileSync('sleep', ['0.05']);
  }
}

export async function startRgw(): Promise<void> {
  execFileSync('radosgw', ['-c', path.join(RGW_DIR, 'ceph.conf'), '-n', 'client.rgw.a']);
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${s3Env()!.endpoint}/`);
      if (r.status) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('radosgw did not come back');
}

/** radosgw down while `during` runs, up again afterwards. */
export async function restartRgw(during: () => Promise<void>): Promise<void> {
  stopRgw();
  try {
    await during();
  } finally {
    await startRgw();
  }
}
