import path from 'node:path';
import { MailcasError } from '../errors.js';
import type { BlobBackend } from './backend.js';
import { FsBackend } from './fs-backend.js';
import { S3Backend, type S3Location } from './s3-backend.js';
import { DEFAULT_RETRY, RetryBackend, type RetryPolicy } from './retry-backend.js';
import { SharedBucket, nodePrefix } from './shared-bucket.js';

/** When `tier` moves blobs cold by default (the store's policy; `mailcas tier` flags override it). */
export interface TierPolicy {
  olderThanMs: number;
  minSize: number;
}

/**
 * Where a store's blobs live: kept in its metadata when it is created,
 * never changed after. 'tiered': new blobs on local files (hot), moved to
 * the bucket (cold: objects, and packs for small blobs) by `tier`; with
 * writeBehind, moved as soon as they are written (background and `flush`).
 */
export type BackendConfig =
  | { kind: 'fs' }
  | ({ kind: 's3'; node?: string } & S3Location)
  | { kind: 'tiered'; cold: S3Location; writeBehind: boolean; policy: TierPolicy };

export const DEFAULT_TIER_POLICY: TierPolicy = { olderThanMs: 30 * 24 * 3600 * 1000, minSize: 0 };

/** The retry policy, with $MAILCAS_RETRY_DEADLINE_MS (how long a transient backend failure is retried) applied. */
export function retryPolicy(over: Partial<RetryPolicy> = {}): RetryPolicy {
  const env = Number(process.env.MAILCAS_RETRY_DEADLINE_MS);
  return { ...DEFAULT_RETRY, ...(Number.isSafeInteger(env) && env >= 0 ? { deadlineMs: env } : {}), ...over };
}

/**
 * The backends a configuration names: the primary one (every new blob is
 * written there: files under <dir>/blobs, or a bucket), and the cold tier
 * of a tiered store. Buckets sit behind the retry wrapper.
 */
export function openBackends(dir: string, cfg: BackendConfig, retry?: Partial<RetryPolicy>, readOnly = false): { primary: BlobBackend; cold: BlobBackend | null; shared: SharedBucket | null } {
  switch (cfg.kind) {
    case 'fs':
      return { primary: new FsBackend(path.join(dir, 'blobs'), { readOnly }), cold: null, shared: null };
    case 's3': {
      if (!cfg.node) return { primary: new RetryBackend(new S3Backend(cfg), retryPolicy(retry)), cold: null, shared: null };
      // one node of a cluster: its own blobs under nodes/<name>/, large ones shared with the other nodes (docs/SCALE-OUT.md)
      const loc = { ...cfg };
      delete loc.node;
      return {
        primary: new RetryBackend(new S3Backend({ ...loc, prefix: nodePrefix(loc.prefix, cfg.node) }), retryPolicy(retry)),
        cold: null,
        shared: new SharedBucket(loc, cfg.node, retryPolicy(retry)),
      };
    }
    case 'tiered':
      return { primary: new FsBackend(path.join(dir, 'blobs'), { readOnly }), cold: new RetryBackend(new S3Backend(cfg.cold), retryPolicy(retry)), shared: null };
    default:
      throw new MailcasError('E_STORE', `unknown blob backend ${JSON.stringify((cfg as { kind: string }).kind)} in the store's configuration`);
  }
}

const s3Name = (l: S3Location): string => `s3://${l.bucket}/${l.prefix}${l.endpoint ? ` at ${l.endpoint}` : ''}`;

export function describeBackend(cfg: BackendConfig): string {
  if (cfg.kind === 'fs') return 'files under blobs/';
  if (cfg.kind === 's3') return cfg.node ? `${s3Name(cfg)} (node ${cfg.node}: large blobs shared with the other nodes)` : s3Name(cfg);
  return `files under blobs/ (hot), ${s3Name(cfg.cold)} (cold${cfg.writeBehind ? ', written behind' : ''})`;
}
