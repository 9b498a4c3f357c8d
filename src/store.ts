import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { MailcasError, isMailcasError } from './errors.js';
import type { Statement } from 'better-sqlite3';
import { openDb, getMeta, setMeta, bumpCounter, immediate, sqliteError, type Db } from './meta/db.js';
import { GENERATION } from './meta/schema.js';
import { makeDirsSync } from './util/dirs.js';
import { AsyncMutex } from './util/async-mutex.js';
import { BlobStore, DEFAULT_COMPRESSION, type BlobLocation, type CompressionPolicy } from './cas/blob-store.js';
import type { BlobBackend } from './backend/backend.js';
import { DEFAULT_TIER_POLICY, describeBackend, openBackends, type BackendConfig, type TierPolicy } from './backend/open-backend.js';
import { S3Backend, type S3Location } from './backend/s3-backend.js';
import { NODE_NAME_RE, type SharedBucket } from './backend/shared-bucket.js';
import type { RetryPolicy } from './backend/retry-backend.js';
import { cleanStaleTemps } from './util/temp-files.js';
import { gcClock } from './util/test-faults.js';
import { withLatePuts } from './backend/late-puts.js';
import { countRefs, placeOf, type BlobRow } from './blob-index/refcounts.js';
import { BlobIndex } from './blob-index/blob-index.js';
import { BlobIndexView } from './blob-index/index-view.js';
import type { MarkerRecord } from './blob-index/markers.js';
import { deriveDomainKey, newHasher } from './util/hash.js';
import { CommitQueue } from './meta/commit-queue.js';
import { runCompact, type CompactOptions, type CompactReport } from './meta/compact.js';
import { ingestMessage, type CommitItem, type Committer, type IngestOptions, type IngestResult, type LeaseRequest, type Preparer, type Recipient, type RecipientResult } from './ingest/ingest.js';
import { prepareMessage } from './ingest/prepare.js';
import { BuildPool } from './ingest/worker-pool.js';
import { isFileInput, type MessageInput } from './split/spool.js';
import { ByteBudget } from './util/byte-budget.js';
import { unpackMessageLayout, type LayoutColumns } from './layout/packed-layout.js';
import { blobRefs, type Layout } from './layout/layout.js';
import { coalesce, reassemble } from './reassemble/reassemble.js';
import type { RangeBlobReader } from './reassemble/range.js';
import { MessageAccess } from './reassemble/message-access.js';
import { defaultLogger, type Logger } from './util/logger.js';
import { DEFAULT_INLINE_THRESHOLD, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_PARTS, DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_OFFLOAD_ABOVE_BYTES, DEFAULT_WORKERS, LEASE_TTL_SECONDS, SPOOL_MEMORY_BYTES, TIER_BATCH, WRITE_BEHIND_INTERVAL_MS, DEFAULT_WRITE_BEHIND_MAX_BYTES, MIN_INLINE_THRESHOLD, PART_MEMORY_BYTES, WHOLE_CHECK_BYTES } from './limits.js';
import type { DedupScope, StoreConfig, StoreContext } from './store-context.js';
import type { GcOptions, GcReport } from './lifecycle/gc.js';
import { runMaintenance } from './lifecycle/maintenance.js';
import { runCollect, type CollectOptions, type CollectReport } from './cluster/collect.js';
import { runCheck, type CheckOptions, type CheckReport } from './lifecycle/check.js';
import { maybeTrainDictionary } from './meta/dictionary.js';
import { buildReport, type StorageReport } from './report/report.js';
import { runTier, type TierOptions, type TierReport } from './lifecycle/tier.js';

export interface StoreOptions {
  /** Blob backend; default: files under <dir>/blobs. */
  backend?: BlobBackend;
  /** Used when the store is created; later opens keep the stored values. */
  inlineThreshold?: number;
  dedupScope?: DedupScope;
  /** Refuse messages larger than this (E_TOO_LARGE). */
  maxMessageBytes?: number;
  /** Refuse messages with more MIME entities than this (E_TOO_LARGE; default DEFAULT_MAX_PARTS). */
  maxParts?: number;
  /** Refuse MIME nesting deeper than this (E_TOO_LARGE); default: levels past MAX_MIME_DEPTH are stored as opaque bytes. */
  maxDepth?: number;
  /** Decode transfer encodings to canonical bytes (default true). */
  decode?: boolean;
  compression?: Partial<CompressionPolicy>;
  /** Train a header dictionary once this many messages are stored (0 disables). */
  dictionaryAfter?: number;
  /** Worker threads that split and verify large messages off the event loop (default: one per core; 0: none). */
  workers?: number;
  /** Messages at least this large are prepared in a worker (default DEFAULT_OFFLOAD_ABOVE_BYTES). */
  offloadAbove?: number;
  /** Bytes all ingests in flight may hold in memory together (default DEFAULT_MEMORY_BUDGET_BYTES). */
  memoryBudgetBytes?: number;
  /** Creating a store: keep its blobs in this bucket (an existing store refuses a different one). */
  s3?: S3Location;
  /** With s3: the store is this node of a cluster sharing the bucket (large blobs stored once for all nodes; docs/SCALE-OUT.md). */
  node?: string;
  /** With s3: new blobs on local files, moved to the bucket by tier (writeBehind: at once, in the background and by flush). */
  tiered?: { writeBehind?: boolean; policy?: Partial<TierPolicy> };
  /** A cold tier backend to go with `backend` (tests). */
  coldBackend?: BlobBackend;
  /** Long-running processes (LMTP, services): upload the write-behind backlog in the background. */
  background?: boolean;
  /** Write-behind: refuse new mail (temporarily) while more than this many bytes wait for the object store (default 1 GiB). */
  writeBehindMaxBytes?: number;
  /** How transient backend failures are retried (default: backoff up to 30 s, $MAILCAS_RETRY_DEADLINE_MS). */
  retry?: Partial<RetryPolicy>;
  /** How long a lease protects an uncommitted blob without renewal (default LEASE_TTL_SECONDS; ingests renew every third of it). */
  leaseTtlSeconds?: number;
  logger?: Logger;
}

export interface MessageRecord {
  id: string;
  user: string;
  mailbox: string;
  size: number;
  hash: string;
  received: number;
  subject: string | null;
  from: string | null;
  date: string | null;
  messageId: string | null;
}

/**
 * A mailcas store: metadata in <dir>/meta.sqlite, blobs in a backend.
 *
 *   const store = await Store.open('/var/lib/mailcas');
 *   const { id } = await store.ingest(fs.createReadStream('m.eml'), { user: 'alice' });
 *   (await store.fetch(id)).pipe(process.stdout);
 *   await store.close();
 */
export class Store implements StoreContext {
  readonly tmpDir: string;
  readonly writeLock = new AsyncMutex();
  readonly index: BlobIndex;
  readonly blobStore: BlobStore;
  readonly shared: SharedBucket | null;
  readonly log: Logger;
  readonly leaseTtlMs: number;
  private readonly ops: CommitQueue<MetaOp, unknown>;
  /** Ingests in flight in this process (group commit waits briefly for them). */
  private active = 0;
  private readonly domainKeys = new Map<string, Buffer | null>();
  private readonly dicts = new Map<number, Buffer>();
  private currentDict: { id: number; data: Buffer } | null | undefined;
  private closed = false;
  private readonly dictionaryAfter: number;
  private readonly memory: ByteBudget;
  /** Worker threads for splitting large messages (null: everything on this thread). */
  private readonly workers: BuildPool | null;
  private readonly offloadAbove: number;
  private readonly maxBacklog: number;
  private sinceDictCheck = 0;

  private constructor(
    readonly dir: string,
    readonly db: Db,
    backends: { primary: BlobBackend; cold: BlobBackend | null; shared?: SharedBucket | null },
    readonly config: StoreConfig,
    private readonly secret: Buffer,
    opts: StoreOptions,
    /** Where the blobs live (as configured when the store was created). */
    readonly backendConfig: BackendConfig = { kind: 'fs' },
  ) {
    this.tmpDir = path.join(dir, 'tmp');
    makeDirsSync(this.tmpDir);
    cleanStaleTemps(this.tmpDir);
    this.log = opts.logger ?? defaultLogger();
    this.index = new BlobIndex(db, this.writeLock);
    this.leaseTtlMs = (opts.leaseTtlSeconds ?? LEASE_TTL_SECONDS) * 1000;
    this.shared = backends.shared ?? null;
    this.blobStore = new BlobStore(backends.primary, { ...DEFAULT_COMPRESSION, ...opts.compression }, this.tmpDir, backends.cold, this.shared?.objects ?? null);
    // leases, renewals and commits share one group-commit stream: one transaction, one fsync, for all
    this.ops = new CommitQueue<MetaOp, unknown>(
      db,
      this.writeLock,
      (op) => this.applyOp(op),
      (n) => this.active > n,
      // leases and renewals need to be visible, not durable (see CommitQueue); a marker's record is durable before the marker is written
      (op) => op.k === 'commit' || op.k === 'marker',
    );
    this.dictionaryAfter = opts.dictionaryAfter ?? 256;
    this.memory = new ByteBudget(opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES);
    const n = opts.workers ?? DEFAULT_WORKERS();
    this.workers = n > 0 ? new BuildPool(n) : null;
    this.offloadAbove = opts.offloadAbove ?? DEFAULT_OFFLOAD_ABOVE_BYTES;
    const workers = this.workers;
    const offloadAbove = this.offloadAbove;
    this.preparer = {
      prepare: (spool, o) => (workers && spool.size >= offloadAbove ? workers.prepare(spool, o) : prepareMessage(spool, o)),
      sharedAbove: workers ? offloadAbove : Infinity,
    };
    this.maxBacklog = opts.writeBehindMaxBytes ?? DEFAULT_WRITE_BEHIND_MAX_BYTES;
    if (opts.background && backendConfig.kind === 'tiered' && backendConfig.writeBehind) this.startUploader();
  }

  /**
   * Creates a store (or opens it when it exists with the same backend): with
   * `s3`, its blobs live in that bucket, which is created when missing.
   */
  static async init(dir: string, opts: StoreOptions = {}): Promise<Store> {
    const s = await Store.open(dir, opts);
    try {
      if (s.backendConfig.kind !== 'fs') await new S3Backend(s.backendConfig.kind === 's3' ? s.backendConfig : s.backendConfig.cold).ensureBucketAndClose();
      return s;
    } catch (e) {
      await s.close();
      throw e;
    }
  }

  /** Opens the store in `dir`, creating it on first use. */
  static async open(dir: string, opts: StoreOptions = {}): Promise<Store> {
    if (!dir) throw new MailcasError('E_USAGE', 'a store directory is required');
    makeDirsSync(dir);
    const file = path.join(dir, 'meta.sqlite');
    const db = openDb(file);
    try {
      // an existing store is opened without the write lock; creating one takes it (IMMEDIATE), so two
      // processes creating the same store at once agree on its settings and secret
      const read = (): { config: StoreConfig; secret: Buffer; blobs: BackendConfig } => ({ config: loadConfig(db, opts), secret: loadSecret(db), blobs: loadBackendConfig(db, opts) });
      const { config, secret, blobs } = getMeta(db, 'config') !== null && getMeta(db, 'secret') !== null && !opts.s3 ? read() : immediate(db, read);
      const opened = opts.backend ? { primary: opts.backend, cold: opts.coldBackend ?? null } : openBackends(dir, blobs, opts.retry);
      const backends = { ...opened, cold: withLatePuts(opened.cold) };
      return new Store(dir, db, backends, config, secret, opts, blobs);
    } catch (e) {
      db.close();
      throw sqliteError(e, file);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new MailcasError('E_CLOSED', 'store is closed');
  }

  domainOf(user: string): string {
    switch (this.config.dedupScope) {
      case 'global':
        return '';
      case 'user':
        return `user:${user}`;
      case 'tenant': {
        const at = user.lastIndexOf('@');
        return `tenant:${at >= 0 ? user.slice(at + 1).toLowerCase() : user}`;
      }
    }
  }

  domainKey(domain: string): Buffer | null {
    if (domain === '') return null;
    let k = this.domainKeys.get(domain);
    if (k === undefined) {
      k = deriveDomainKey(this.secret, domain);
      this.domainKeys.set(domain, k);
    }
    return k;
  }

  dictionary(id: number): Buffer | null {
    let d = this.dicts.get(id);
    if (!d) {
      const r = this.db.prepare('SELECT data FROM dictionaries WHERE id = ?').get(id) as { data: Buffer } | undefined;
      if (!r) return null;
      d = r.data;
      this.dicts.set(id, d);
    }
    return d;
  }

  currentDictionary(): { id: number; data: Buffer } | null {
    if (this.currentDict === undefined) {
      const r = this.db.prepare("SELECT id, data FROM dictionaries WHERE kind = 'header' ORDER BY id DESC LIMIT 1").get() as { id: number; data: Buffer } | undefined;
      this.currentDict = r ?? null;
    }
    return this.currentDict;
  }

  /** Stores one message. Resolves only when the message is durably committed and reassembles exactly. */
  async ingest(input: MessageInput, opts: IngestOptions): Promise<IngestResult> {
    const [r] = await this.deliver(input, [{ user: opts.user, mailbox: opts.mailbox }], { received: opts.received, skipExisting: opts.skipExisting });
    if (!r.ok) throw r.error;
    return r.result;
  }

  /**
   * Stores one message for several recipients (an LMTP transaction): it is
   * spooled, split and verified once (per dedup domain), its parts stored
   * once, with one message record per recipient. Resolves per recipient,
   * each only once durable; a failure fails its recipients, not the call
   * (except for input that is refused for everyone: too large, empty, unreadable).
   */
  async deliver(input: MessageInput, recipients: Recipient[], opts: { received?: number; skipExisting?: boolean } = {}): Promise<RecipientResult[]> {
    this.assertOpen();
    this.checkBacklog();
    // what an ingest may hold in memory is taken from one budget shared by every ingest of this
    // store object, so many large messages at once wait their turn instead of adding up
    const r = await this.memory.run(memoryCost(input), async () => {
      this.active++;
      try {
        return await ingestMessage(this, this.committer, this.preparer, input, recipients, opts);
      } finally {
        this.active--;
      }
    });
    if (this.dictionaryAfter > 0 && ++this.sinceDictCheck >= 64) {
      this.sinceDictCheck = 0;
      const d = await maybeTrainDictionary(this, this.dictionaryAfter);
      if (d) this.currentDict = d;
    }
    return r;
  }

  private readonly committer: Committer = {
    commit: (item) => this.ops.submit({ k: 'commit', item }) as Promise<number[]>,
    lease: (req) => this.ops.submit({ k: 'lease', req }) as Promise<(BlobRow | undefined)[]>,
    renew: (token, expires) => this.ops.submit({ k: 'renew', token, expires }) as Promise<number>,
    record: async (m) => void (await this.ops.submit({ k: 'marker', m })),
    forget: async (m) => void (await this.ops.submit({ k: 'unmarker', m })),
  };

  /** Large messages are split and verified in worker threads (the event loop stays free for other sessions); small ones here. */
  private readonly preparer: Preparer;

  // ---- write-behind: the hot tier acknowledges, an uploader in long-running processes empties it as it goes

  private uploader: { timer: NodeJS.Timeout | null; running: Promise<void> | null; stop: boolean } | null = null;
  private backlog = { at: 0, bytes: 0 };

  /** Starts uploading the write-behind backlog in the background (LMTP, services): every second, a step at a time. */
  private startUploader(): void {
    const u: { timer: NodeJS.Timeout | null; running: Promise<void> | null; stop: boolean } = { timer: null, running: null, stop: false };
    this.uploader = u;
    const tick = (): void => {
      if (u.stop) return;
      u.running = runTier(this, { olderThanMs: 0, limit: TIER_BATCH })
        .then((r) => {
          if (r.objects + r.packed) this.log.info('write-behind', { uploaded: r.objects + r.packed, pendingUploads: r.pendingUploads, pendingBytes: r.pendingBytes });
        })
        .catch((e: Error) => this.log.warn('write-behind-failed', { error: e.message }))
        .finally(() => {
          u.running = null;
          if (!u.stop) u.timer = setTimeout(tick, WRITE_BEHIND_INTERVAL_MS).unref();
        });
    };
    u.timer = setTimeout(tick, WRITE_BEHIND_INTERVAL_MS).unref();
  }

  private async stopUploader(): Promise<void> {
    const u = this.uploader;
    if (!u) return;
    u.stop = true;
    if (u.timer) clearTimeout(u.timer);
    await u.running;
  }

  /** Write-behind back-pressure: past the configured backlog, new mail waits (a temporary failure) instead of filling the disk. */
  private checkBacklog(): void {
    if (this.backendConfig.kind !== 'tiered' || !this.backendConfig.writeBehind) return;
    const now = Date.now();
    if (now - this.backlog.at > 1000) this.backlog = { at: now, bytes: this.index.view.pending().bytes };
    if (this.backlog.bytes > this.maxBacklog) {
      throw new MailcasError('E_BACKEND', `the write-behind backlog is full (${this.backlog.bytes} bytes waiting for the object store, the limit is ${this.maxBacklog}): try again later`, { transient: true });
    }
  }

  private applyOp(op: MetaOp): unknown {
    switch (op.k) {
      case 'lease':
        return this.index.reserve(op.req.token, op.req.hashes, op.req.expires);
      case 'renew':
        return this.index.renew(op.token, op.expires);
      case 'marker':
        return this.index.recordMarker(op.m, Date.now());
      case 'unmarker':
        return this.index.forgetMarker(op.m);
      case 'commit':
        return this.applyCommit(op.item);
    }
  }

  private applyCommit(item: CommitItem): number[] {
    const db = this.db;
    const p = item.prepared;
    const insMsg = this.stmt(
      'insMsg',
      `INSERT INTO messages(user, mailbox, size, hash, received, codec, dict, layout, inline, inline_codec, header_bytes, layout_raw, inline_raw, new_bytes,
                            fallback, date, subject, from_addr, to_addr, cc_addr, message_id, in_reply_to, tree)
       VALUES (@user, @mailbox, @size, @hash, @received, @codec, @dict, @layout, @inline, @inlineCodec, @headerBytes, @layoutRaw, @inlineRaw, @newBytes,
               @fallback, @date, @subject, @from, @to, @cc, @messageId, @inReplyTo, @tree)`,
    );
    const insPart = this.stmt(
      'insPart',
      `INSERT INTO parts(message_id, seq, path, content_type, filename, cte, recipe, raw_size, size, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const ids = item.recipients.map((r, k) => {
      const info = insMsg.run({
        user: r.user,
        mailbox: r.mailbox,
        size: p.size,
        hash: p.hash,
        received: item.received,
        codec: p.packed.headCodec,
        dict: p.packed.dict,
        layout: p.packed.head,
        inline: p.packed.inline,
        inlineCodec: p.packed.inlineCodec,
        headerBytes: p.headerBytes,
        layoutRaw: p.packed.headRaw,
        inlineRaw: p.packed.inlineRaw,
        newBytes: k === 0 ? item.newBytes : 0,
        fallback: p.fallback ? 1 : 0,
        ...p.envelope,
        tree: p.tree,
      });
      const id = Number(info.lastInsertRowid);
      p.parts.forEach((q, i) => insPart.run(id, i, q.path, q.contentType, q.filename, q.cte, q.recipe, q.rawSize, q.size, q.hash));
      return id;
    });
    // gc revokes a lease (committed) before it deletes the object it protected: while every lease is
    // still here, every object this message needs is too, whatever the clocks say (E_LEASE_LOST otherwise)
    this.index.publishRefs(item.leaseToken, item.leased, item.refs, Date.now());
    if (p.fallback) bumpCounter(db, 'split_fallbacks', item.recipients.length);
    bumpCounter(db, GENERATION);
    return ids;
  }

  private readonly stmts = new Map<string, Statement>();
  private stmt(name: string, sql: string): Statement {
    let s = this.stmts.get(name);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(name, s);
    }
    return s;
  }

  /** The message row, checked against `user` when given. */
  private row(id: string, user?: string): MsgRow {
    this.assertOpen();
    const n = Number(id);
    const r = Number.isSafeInteger(n) && n > 0 ? (this.stmt('getRow', 'SELECT id, user, mailbox, size, hash, received, codec, dict, layout, inline, inline_codec, inline_dict, subject, from_addr, date, message_id FROM messages WHERE id = ?').get(n) as MsgRow | undefined) : undefined;
    if (!r || (user !== undefined && r.user !== user)) throw new MailcasError('E_NOT_FOUND', `message ${id} not found${user !== undefined ? ` for user ${user}` : ''}`);
    return r;
  }

  /**
   * One message as FETCH sees it (IMAP, the HTTP service): its size, MIME
   * tree and bytes by range, reading only the blobs a request needs.
   */
  access(id: string, opts: { user?: string } = {}): MessageAccess {
    const r = this.row(id, opts.user);
    const t = this.stmt('getTree', 'SELECT tree FROM messages WHERE id = ?').get(r.id) as { tree: Buffer | null };
    return new MessageAccess(String(r.id), r.size, r.received, layoutOfRow(this, r), t.tree, this.blobReader(), this.tmpDir);
  }

  /** Blob reads (backend GETs) and bytes read since the store was opened. */
  readStats(): { reads: number; bytes: number } {
    return { ...this.blobStore.stats };
  }

  /** Decoded layout of a message (header blocks, literals, part references). */
  layout(id: string, user?: string): Layout {
    const r = this.row(id, user);
    return layoutOfRow(this, r);
  }

  /**
   * A reader of verified canonical blob bytes. A blob found missing or
   * damaged is marked corrupt (the next ingest of the same content rewrites
   * it; check lists the messages that need it).
   */
  blobReader(): RangeBlobReader {
    const locate = (hash: Buffer, size: number): BlobLocation => {
      const row = this.index.row(hash);
      if (!row) throw new MailcasError('E_INTEGRITY', `blob ${hash.toString('hex')} has no metadata row`, { data: { key: hash.toString('hex') } });
      return { key: hash, codec: row.codec, size, domainKey: this.domainKey(row.domain), chunks: row.chunks, ...placeOf(row) };
    };
    return {
      read: (hash, size) => this.markingCorrupt(hash, this.blobStore.read(locate(hash, size))),
      readRange: (hash, size, start, end) => this.markingCorrupt(hash, this.blobStore.readRange(locate(hash, size), start, end)),
    };
  }

  private async *markingCorrupt(hash: Buffer, src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    try {
      yield* src;
    } catch (e) {
      if (isMailcasError(e, 'E_INTEGRITY')) await this.markCorrupt(hash);
      throw e;
    }
  }

  /** Records that a blob's object is missing or damaged (best effort: check --deep finds it again if this fails). */
  async markCorrupt(hash: Buffer): Promise<void> {
    if (this.closed) return;
    try {
      // a read damaged on the way (a flaky network, a bad cable) is not damage at rest: read it again (up to
      // three times) before saying the object is damaged
      const row = this.index.row(hash);
      for (let i = 0; row && i < 3; i++) {
        if ((await this.blobStore.scan({ key: hash, codec: row.codec, size: row.size, domainKey: this.domainKey(row.domain), ...placeOf(row) })).ok) {
          this.log.warn('blob-read-damaged-in-transit', { key: hash.toString('hex') });
          return;
        }
      }
    } catch {
      // the second read failed too: mark it
    }
    try {
      await this.index.markCorrupt(hash);
      this.log.info('blob-marked-corrupt', { key: hash.toString('hex') }); // the read's own error says what failed
    } catch (e) {
      this.log.warn('blob-corrupt-unmarked', { key: hash.toString('hex'), error: (e as Error).message });
    }
  }

  /**
   * The exact bytes of a message as a stream. The whole-message hash is
   * checked as the bytes go out; a mismatch errors the stream (E_INTEGRITY).
   */
  async fetch(id: string, opts: { user?: string } = {}): Promise<Readable> {
    const r = this.row(id, opts.user); // not found: reject now, not on first read
    if (r.size <= WHOLE_CHECK_BYTES) {
      // small messages are checked whole before the first byte goes out (headers and inline bodies included)
      const whole = await this.fetchBuffer(id, opts);
      return Readable.from([whole], { objectMode: false });
    }
    return Readable.from(this.checkedBytes(r), { objectMode: false });
  }

  /** The whole message in memory (small messages, tests), checked like fetch. */
  async fetchBuffer(id: string, opts: { user?: string; readAhead?: number } = {}): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of this.checkedBytes(this.row(id, opts.user), opts.readAhead)) {
      parts.push(c);
      n += c.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  private async *checkedBytes(r: MsgRow, readAhead?: number): AsyncGenerator<Buffer> {
    let layout: Layout;
    try {
      layout = layoutOfRow(this, r);
    } catch (e) {
      throw new MailcasError('E_CORRUPT', `message ${r.id}: its stored layout cannot be decoded (${(e as Error).message})`, { cause: e });
    }
    const h = newHasher();
    let n = 0;
    for await (const c of coalesce(reassemble(layout, this.blobReader(), `message ${r.id}`, readAhead))) {
      h.update(c);
      n += c.length;
      yield c;
    }
    if (n !== r.size || !h.digest().equals(r.hash)) {
      throw new MailcasError('E_INTEGRITY', `message ${r.id}: reassembled bytes do not match the stored hash`);
    }
  }

  get(id: string, opts: { user?: string } = {}): MessageRecord {
    return toRecord(this.row(id, opts.user));
  }

  /** Messages of a user (optionally one mailbox), in id order. */
  list(user: string, mailbox?: string): MessageRecord[] {
    this.assertOpen();
    const rows = (
      mailbox === undefined
        ? this.db.prepare('SELECT id, user, mailbox, size, hash, received, subject, from_addr, date, message_id FROM messages WHERE user = ? ORDER BY id').all(user)
        : this.db.prepare('SELECT id, user, mailbox, size, hash, received, subject, from_addr, date, message_id FROM messages WHERE user = ? AND mailbox = ? ORDER BY id').all(user, mailbox)
    ) as MsgRow[];
    return rows.map(toRecord);
  }

  /**
   * IMAP UIDVALIDITY of every mailbox of this store: fixed for its life.
   * Message ids are never reused (AUTOINCREMENT), so the ids of a mailbox's
   * messages serve as its UIDs for ever.
   */
  get uidValidity(): number {
    const v = crypto.createHmac('sha256', this.secret).update('imap uidvalidity').digest().readUInt32BE(0) & 0x7fffffff;
    return v || 1;
  }

  /** The lowest id a message stored from now on can get (IMAP UIDNEXT). */
  nextId(): number {
    this.assertOpen();
    const r = this.stmt('nextId', "SELECT seq FROM sqlite_sequence WHERE name = 'messages'").get() as { seq: number } | undefined;
    return (r?.seq ?? 0) + 1;
  }

  /** A page of a user's messages (optionally one mailbox) in id order, after the id `after`. */
  listPage(user: string, opts: { mailbox?: string; after?: number; limit: number }): MessageRecord[] {
    this.assertOpen();
    const cols = 'id, user, mailbox, size, hash, received, subject, from_addr, date, message_id';
    const after = opts.after ?? 0;
    const rows = (
      opts.mailbox === undefined
        ? this.stmt('listPage', `SELECT ${cols} FROM messages WHERE user = ? AND id > ? ORDER BY id LIMIT ?`).all(user, after, opts.limit)
        : this.stmt('listPageMb', `SELECT ${cols} FROM messages WHERE user = ? AND mailbox = ? AND id > ? ORDER BY id LIMIT ?`).all(user, opts.mailbox, after, opts.limit)
    ) as MsgRow[];
    return rows.map(toRecord);
  }

  /** Every user of the store with their message count and bytes (as delivered). */
  users(): { user: string; messages: number; bytes: number }[] {
    this.assertOpen();
    return this.stmt('users', 'SELECT user, COUNT(*) AS messages, SUM(size) AS bytes FROM messages GROUP BY user ORDER BY user').all() as { user: string; messages: number; bytes: number }[];
  }

  /** A user's mailboxes: name, message count, total size, highest id. */
  mailboxes(user: string): { name: string; messages: number; bytes: number; lastId: number }[] {
    this.assertOpen();
    return this.stmt('mailboxes', 'SELECT mailbox AS name, COUNT(*) AS messages, SUM(size) AS bytes, MAX(id) AS lastId FROM messages WHERE user = ? GROUP BY mailbox ORDER BY mailbox').all(user) as {
      name: string;
      messages: number;
      bytes: number;
      lastId: number;
    }[];
  }

  /** Removes messages; their blobs lose a reference each (gc reclaims unreferenced blobs after the grace period). */
  async expunge(user: string, ids: string[]): Promise<number> {
    this.assertOpen();
    const rows = ids.map((id) => this.row(id, user));
    return this.writeLock.run(() =>
      immediate(this.db, () => {
        let n = 0;
        const now = Date.now();
        for (const r of rows) {
          const cur = this.stmt('getMsg', 'SELECT * FROM messages WHERE id = ?').get(r.id) as MsgRow | undefined;
          if (!cur) continue; // expunged concurrently
          const refs = countRefs(blobRefs(layoutOfRow(this, cur)));
          this.stmt('delMsg', 'DELETE FROM messages WHERE id = ?').run(r.id);
          this.stmt('delParts', 'DELETE FROM parts WHERE message_id = ?').run(r.id);
          this.index.dropRefs(refs.values(), now);
          n++;
        }
        if (n) bumpCounter(this.db, GENERATION);
        return n;
      }),
    );
  }

  gc(opts: GcOptions = {}): Promise<GcReport> {
    this.assertOpen();
    return runMaintenance(this, { now: gcClock(), ...opts });
  }

  /** Node of a cluster: removes what a retired node left in the bucket (its markers, its own objects); see SharedBucket.forgetNode. */
  async forgetNode(node: string, opts: { dryRun?: boolean } = {}): Promise<{ markers: number; objects: number; bytes: number }> {
    this.assertOpen();
    if (!this.shared) throw new MailcasError('E_USAGE', 'this store is not a node of a cluster (mailcas init --s3 ... --node NAME)');
    if (node === this.shared.node) throw new MailcasError('E_USAGE', `${node} is this store's own node: run forget-node from another node, once this one is retired`);
    return this.shared.forgetNode(node, !!opts.dryRun);
  }

  /** Node of a cluster: deletes instances in the shared bucket no node has a marker on (see runCollect). */
  collect(opts: CollectOptions = {}): Promise<CollectReport> {
    this.assertOpen();
    if (!this.shared) throw new MailcasError('E_USAGE', 'this store is not a node of a cluster (mailcas init --s3 ... --node NAME): it has no shared bucket to collect');
    return runCollect(this.shared, this.log, opts);
  }

  /** Storage figures from the metadata alone (never reads a blob): what `mailcas report --json` prints. */
  report(opts: { top?: number } = {}): StorageReport {
    this.assertOpen();
    const r = buildReport(this.db, opts);
    if (this.blobStore.cold) {
      const p = this.index.view.pending();
      r.pendingUploads = p.blobs;
      r.pendingBytes = p.bytes;
    }
    return r;
  }

  /** Moves blobs to the cold tier (see runTier); the store's policy when no limits are given. */
  tier(opts: Partial<TierOptions> = {}): Promise<TierReport> {
    this.assertOpen();
    const policy = this.backendConfig.kind === 'tiered' ? this.backendConfig.policy : DEFAULT_TIER_POLICY;
    return runTier(this, { olderThanMs: policy.olderThanMs, minSize: policy.minSize, ...opts });
  }

  /** Recompresses older mail's header blocks with a dictionary trained on the store now (see runCompact); 30 days and older by default. */
  async compact(opts: Partial<CompactOptions> = {}): Promise<CompactReport> {
    this.assertOpen();
    const { report, dictionary } = await runCompact(this, { olderThanMs: DEFAULT_TIER_POLICY.olderThanMs, ...opts });
    if (dictionary) this.currentDict = dictionary;
    return report;
  }

  /** Uploads everything still only in the hot tier (write-behind's backlog), now. */
  async flush(): Promise<TierReport> {
    this.assertOpen();
    let total: TierReport | null = null;
    for (;;) {
      const r = await runTier(this, { olderThanMs: 0, minSize: 0 });
      total = total ? mergeTier(total, r) : r;
      if (r.pendingUploads === 0 || r.objects + r.packed === 0) return total;
    }
  }

  check(opts: CheckOptions = {}): Promise<CheckReport> {
    this.assertOpen();
    return runCheck(this, opts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.stopUploader();
    await this.writeLock.run(() => {});
    this.closed = true;
    await this.workers?.close();
    await this.blobStore.backend.close();
    await this.blobStore.cold?.close();
    await this.shared?.close();
    this.db.close();
  }
}

type MetaOp =
  | { k: 'lease'; req: LeaseRequest }
  | { k: 'renew'; token: string; expires: number }
  | { k: 'commit'; item: CommitItem }
  | { k: 'marker'; m: MarkerRecord }
  | { k: 'unmarker'; m: MarkerRecord };

interface MsgRow {
  id: number;
  user: string;
  mailbox: string;
  size: number;
  hash: Buffer;
  received: number;
  codec: number;
  dict: number | null;
  layout: Buffer;
  inline: Buffer | null;
  inline_codec: number;
  inline_dict: number | null;
  subject: string | null;
  from_addr: string | null;
  date: string | null;
  message_id: string | null;
}

export function layoutOfRow(ctx: StoreContext, r: LayoutColumns): Layout {
  return unpackMessageLayout(r, (id) => ctx.dictionary(id));
}

/**
 * What one ingest may hold in memory: a message up to SPOOL_MEMORY_BYTES is
 * held whole (larger ones are parsed from a file through a window), plus a
 * part being canonicalised and its compressed copy (PART_MEMORY_BYTES each).
 */
function memoryCost(input: MessageInput): number {
  let size = SPOOL_MEMORY_BYTES;
  if (Buffer.isBuffer(input) || input instanceof Uint8Array) size = input.byteLength;
  else if (isFileInput(input)) {
    try {
      size = input.end !== undefined ? input.end - (input.start ?? 0) : fs.statSync(input.path).size - (input.start ?? 0);
    } catch {
      /* the spool reports it */
    }
  }
  return Math.min(size, SPOOL_MEMORY_BYTES) + 2 * PART_MEMORY_BYTES;
}

function mergeTier(a: TierReport, b: TierReport): TierReport {
  return {
    dryRun: a.dryRun,
    objects: a.objects + b.objects,
    objectBytes: a.objectBytes + b.objectBytes,
    packed: a.packed + b.packed,
    packedBytes: a.packedBytes + b.packedBytes,
    recompressed: a.recompressed + b.recompressed,
    recompressSavedBytes: a.recompressSavedBytes + b.recompressSavedBytes,
    packs: a.packs + b.packs,
    keptLeased: a.keptLeased + b.keptLeased,
    lost: a.lost + b.lost,
    corrupt: [...a.corrupt, ...b.corrupt],
    pendingUploads: b.pendingUploads,
    pendingBytes: b.pendingBytes,
  };
}

function toRecord(r: MsgRow): MessageRecord {
  return {
    id: String(r.id),
    user: r.user,
    mailbox: r.mailbox,
    size: r.size,
    hash: r.hash.toString('hex'),
    received: r.received,
    subject: r.subject,
    from: r.from_addr,
    date: r.date,
    messageId: r.message_id,
  };
}

/**
 * Where the store's blobs live: recorded when the store is created (files
 * unless `opts.s3` names a bucket); an existing store keeps its own and
 * refuses another.
 */
function loadBackendConfig(db: Db, opts: StoreOptions): BackendConfig {
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
    const n = new BlobIndexView(db).count();
    if (n > 0) throw new MailcasError('E_USAGE', `this store keeps its blobs in ${describeBackend({ kind: 'fs' })}: a store's backend cannot be changed`);
  }
  const cfg = wanted ?? { kind: 'fs' as const };
  if (!created || wanted) setMeta(db, 'backend', JSON.stringify(cfg)); // (inside the creating IMMEDIATE transaction)
  return cfg;
}

/** The store's secret (keys of the dedup domains), created once. */
function loadSecret(db: Db): Buffer {
  const s = getMeta(db, 'secret');
  if (Buffer.isBuffer(s)) return s;
  const fresh = crypto.randomBytes(32);
  setMeta(db, 'secret', fresh);
  return fresh;
}

function loadConfig(db: Db, opts: StoreOptions): StoreConfig {
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
