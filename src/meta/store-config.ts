import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDirsSync } from '../util/dirs.js';
import { MailcasError } from '../errors.js';
import { getMeta, openDb, openDbReadOnly, setMeta, type Db } from './db.js';
import { DEFAULT_TIER_POLICY, describeBackend, type BackendConfig, type TierPolicy } from '../backend/open-backend.js';
import { NODE_NAME_RE } from '../backend/shared-bucket.js';
import type { S3Location } from '../backend/s3-backend.js';
import { DEFAULT_INLINE_THRESHOLD, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_PARTS, MIN_INLINE_THRESHOLD, PART_MEMORY_BYTES } from '../limits.js';

export type DedupScope = 'global' | 'user' | 'tenant';

/** Settings fixed when a store is created (kept in its meta table), with the limits this process applies. */
export interface StoreConfig {
  inlineThreshold: number;
  dedupScope: DedupScope;
  maxMessageBytes: number;
  /** Refuse messages with more MIME entities than this. */
  maxParts: number;
  /** Refuse MIME nesting deeper than this (undefined: deeper levels are kept as opaque bytes). */
  maxDepth?: number;
  decode: boolean;
}

/** What creating or opening a store may ask for (a subset of StoreOptions). */
export interface ConfigRequest {
  inlineThreshold?: number;
  dedupScope?: DedupScope;
  maxMessageBytes?: number;
  maxParts?: number;
  maxDepth?: number;
  decode?: boolean;
  s3?: S3Location;
  node?: string;
  tiered?: { writeBehind?: boolean; policy?: Partial<TierPolicy> };
}

/**
 * Where the store's blobs live: recorded when the store is created (files
 * unless `opts.s3` names a bucket); an existing store keeps its own and
 * refuses another.
 */
export function loadBackendConfig(db: Db, opts: ConfigRequest, blobCount: () => number): BackendConfig {
  if (opts.node && (!opts.s3 || opts.tiered)) throw new MailcasError('E_USAGE', 'a node of a cluster keeps its blobs in the shared bucket itself: --node needs --s3, without --tiered or --write-behind');
  if (opts.node && !NODE_NAME_RE.test(opts.node)) throw new MailcasError('E_USAGE', `invalid node name ${JSON.stringify(opts.node)} (lower-case letters, digits, - and _, at most 63)`);
  const stored = getMeta(db, 'backend');
  const wanted: BackendConfig | null = !opts.s3
    ? null
    : opts.tiered
      ? { kind: 'tiered', cold: opts.s3, writeBehind: !!opts.tiered.writeBehind, policy: { ...DEFAULT_TIER_POLICY, ...(opts.tiered.writeBehind ? { olderThanMs: 0 } : {}), ...opts.tiered.policy } }
      : { kind: 's3', ...opts.s3, ...(opts.node ? { node: opts.node } : {}) };
  if (typeof stored === 'string') {
    const have = JSON.parse(stored) as BackendConfig;
    if (wanted && JSON.stringify(have) !== JSON.stringify(wanted)) {
      throw new MailcasError('E_USAGE', `this store keeps its blobs in ${describeBackend(have)}: a store's backend cannot be changed`);
    }
    return have;
  }
  const created = getMeta(db, 'config') !== null;
  if (created && wanted) {
    const n = blobCount();
    if (n > 0) throw new MailcasError('E_USAGE', `this store keeps its blobs in ${describeBackend({ kind: 'fs' })}: a store's backend cannot be changed`);
  }
  const cfg = wanted ?? { kind: 'fs' as const };
  if (!created || wanted) setMeta(db, 'backend', JSON.stringify(cfg)); // (inside the creating IMMEDIATE transaction)
  return cfg;
}

/** The store's secret (keys of the dedup domains), created once. */
export function loadSecret(db: Db): Buffer {
  const s = getMeta(db, 'secret');
  if (Buffer.isBuffer(s)) return s;
  const fresh = crypto.randomBytes(32);
  setMeta(db, 'secret', fresh);
  return fresh;
}

export function loadConfig(db: Db, opts: ConfigRequest): StoreConfig {
  const stored = getMeta(db, 'config');
  let base: Omit<StoreConfig, 'maxMessageBytes' | 'maxParts' | 'maxDepth'>;
  if (typeof stored === 'string') {
    base = JSON.parse(stored);
  } else {
    const inlineThreshold = opts.inlineThreshold ?? DEFAULT_INLINE_THRESHOLD;
    if (!Number.isInteger(inlineThreshold) || inlineThreshold < MIN_INLINE_THRESHOLD || inlineThreshold > PART_MEMORY_BYTES) {
      throw new MailcasError('E_USAGE', `inline threshold must be an integer from ${MIN_INLINE_THRESHOLD} to ${PART_MEMORY_BYTES}`);
    }
    const dedupScope = opts.dedupScope ?? 'global';
    if (!['global', 'user', 'tenant'].includes(dedupScope)) throw new MailcasError('E_USAGE', `unknown dedup scope ${dedupScope}`);
    base = { inlineThreshold, dedupScope, decode: opts.decode ?? true };
    setMeta(db, 'config', JSON.stringify(base));
  }
  const maxParts = opts.maxParts ?? DEFAULT_MAX_PARTS;
  if (!Number.isSafeInteger(maxParts) || maxParts < 1) throw new MailcasError('E_USAGE', `the parts limit must be a positive integer, got ${maxParts}`);
  return { ...base, maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, maxParts, ...(opts.maxDepth !== undefined ? { maxDepth: opts.maxDepth } : {}) };
}

/** Whether the store's settings and secret are recorded already (then opening it needs no write lock). */
export function isCreated(db: Db): boolean {
  return getMeta(db, 'config') !== null && getMeta(db, 'secret') !== null;
}

/** IMAP UIDVALIDITY of every mailbox of a store: derived from its secret, fixed for its life. */
/** A store's identity as its sync peers know it (from its secret: stable for the store's life, unique in practice). */
export function storeIdOf(secret: Buffer): string {
  return crypto.createHmac('sha256', secret).update('store id').digest('hex').slice(0, 24);
}

export function uidValidityOf(secret: Buffer): number {
  const v = crypto.createHmac('sha256', secret).update('imap uidvalidity').digest().readUInt32BE(0) & 0x7fffffff;
  return v || 1;
}

/**
 * The database of the store in `dir`: created with the directory on first
 * use, unless `create` is false (then E_NOT_FOUND names the directory: a typo
 * in --store never reads as an empty store); with `readOnly`, opened
 * read-only with a private temp directory of its own (removed by the caller).
 */
export function openStoreDatabase(dir: string, opts: { create?: boolean; readOnly?: boolean }): { db: Db; readTmp: string | null } {
  const file = path.join(dir, 'meta.sqlite');
  if ((opts.create ?? true) && !opts.readOnly) makeDirsSync(dir);
  else if (!fs.existsSync(file)) {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new MailcasError('E_STORE', `cannot use ${dir} as a store: it exists and is not a directory`);
    throw new MailcasError('E_NOT_FOUND', `no mailcas store in ${path.resolve(dir)} (is --store right? mailcas --store DIR init creates one)`);
  }
  const readTmp = opts.readOnly ? fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-read-')) : null;
  try {
    return { db: readTmp ? openDbReadOnly(file, readTmp) : openDb(file), readTmp };
  } catch (e) {
    if (readTmp) fs.rmSync(readTmp, { recursive: true, force: true });
    throw e;
  }
}
