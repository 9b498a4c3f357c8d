import path from 'node:path';
import { MailcasError } from '../errors.js';
import type { BlobBackend } from './backend.js';
import { FsBackend } from './fs-backend.js';
import { S3Backend, type S3Location } from './s3-backend.js';
import { DEFAULT_RETRY, RetryBackend, type RetryPolicy } from './retry-backend.js';

/** Where a store's blobs live: kept in its metadata when it is created, never changed after. */
export type BackendConfig = { kind: 'fs' } | ({ kind: 's3' } & S3Location);

/** The retry policy, with $MAILCAS_RETRY_DEADLINE_MS (how long a transient backend failure is retried) applied. */
export function retryPolicy(over: Partial<RetryPolicy> = {}): RetryPolicy {
  const env = Number(process.env.MAILCAS_RETRY_DEADLINE_MS);
  return { ...DEFAULT_RETRY, ...(Number.isSafeInteger(env) && env >= 0 ? { deadlineMs: env } : {}), ...over };
}

/** The backend a configuration names: files under <dir>/blobs, or a bucket behind the retry wrapper. */
export function openBackend(dir: string, cfg: BackendConfig, retry?: Partial<RetryPolicy>): BlobBackend {
  switch (cfg.kind) {
    case 'fs':
      return new FsBackend(path.join(dir, 'blobs'));
    case 's3':
      return new RetryBackend(new S3Backend(cfg), retryPolicy(retry));
    default:
      throw new MailcasError('E_STORE', `unknown blob backend ${JSON.stringify((cfg as { kind: string }).kind)} in the store's configuration`);
  }
}

export function describeBackend(cfg: BackendConfig): string {
  return cfg.kind === 'fs' ? 'files under blobs/' : `s3://${cfg.bucket}/${cfg.prefix}${cfg.endpoint ? ` at ${cfg.endpoint}` : ''}`;
}
