import crypto from 'node:crypto';
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
