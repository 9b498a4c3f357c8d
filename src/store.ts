import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { MailcasError } from './errors.js';
import { sqliteError, immediate, syncRelaxed, type Db } from './meta/db.js';
import { makeDirsSync } from './util/dirs.js';
import { AsyncMutex } from './util/async-mutex.js';
import { BlobStore, DEFAULT_COMPRESSION } from './cas/blob-store.js';
import type { BlobBackend } from './backend/backend.js';
import { DEFAULT_TIER_POLICY, openBackends, type BackendConfig } from './backend/open-backend.js';
import { S3Backend } from './backend/s3-backend.js';
import type { SharedBucket } from './backend/shared-bucket.js';
import { withLatePuts } from './backend/late-puts.js';
import { cleanStaleTemps } from './util/temp-files.js';
import { gcClock } from './util/test-faults.js';
import { countRefs } from './blob-index/refcounts.js';
import { BlobIndex } from './blob-index/blob-index.js';
import { BlobIndexView } from './blob-index/index-view.js';
import { DedupDomains } from './meta/dedup-domains.js';
import { groupCommitter } from './ingest/committer.js';
import { Messages } from './meta/messages.js';
import { Mailboxes } from './meta/mailboxes.js';
import { MailboxOps } from './mailbox/mailbox-ops.js';
import { toRecord, type MessageRecord } from './mailbox/message-record.js';
import { isCreated, openStoreDatabase, loadBackendConfig, loadConfig, loadSecret, storeIdOf, uidValidityOf, type StoreConfig } from './meta/store-config.js';
import { runCompact, type CompactOptions, type CompactReport } from './meta/compact.js';
import { currentDictionary, dictionaryById, maybeTrainDictionary } from './meta/dictionary.js';
import { ingestMessage, type ResumeState, type Committer, type IngestDeps, type IngestOptions, type IngestResult, type Preparer, type Recipient, type RecipientResult } from './ingest/ingest.js';
import { prepareMessage } from './ingest/prepare.js';
import { BuildPool } from './ingest/worker-pool.js';
import { memoryCost } from './ingest/memory-cost.js';
import type { MessageInput } from './split/spool.js';
import { ByteBudget } from './util/byte-budget.js';
import { blobRefs } from './layout/layout.js';
import type { MessageAccess } from './reassemble/message-access.js';
import { BlobReader } from './read/blob-reader.js';
import { MessageReader } from './read/message-reader.js';
import { defaultLogger, type Logger } from './util/logger.js';
import { DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_OFFLOAD_ABOVE_BYTES, DEFAULT_WORKERS, DEFAULT_WRITE_BEHIND_MAX_BYTES, LEASE_TTL_SECONDS } from './limits.js';
import type { GcOptions, GcReport } from './lifecycle/gc.js';
import { runMaintenance } from './lifecycle/maintenance.js';
import { runCheck, type CheckDeps, type CheckOptions, type CheckReport } from './lifecycle/check.js';
import { runTier, type TierOptions, type TierReport } from './lifecycle/tier.js';
import { WriteBehind, flushAll } from './lifecycle/write-behind.js';
import { runCollect, type CollectOptions, type CollectReport } from './cluster/collect.js';
import { buildReport, type StorageReport } from './report/report.js';

export type { MessageRecord } from './mailbox/message-record.js';
export type { DedupScope, StoreConfig } from './meta/store-config.js';
export type { StoreOptions } from './types.js';
import type { StoreOptions } from './types.js';

/**
 * A mailcas store: metadata in <dir>/meta.sqlite, blobs in a backend. A
 * facade over the owners of its parts: the messages table (meta/messages),
 * blob state (blob-index), reading (read), ingest, and the lifecycle steps.
 *
 *   const store = await Store.open('/var/lib/mailcas');
 *   const { id } = await store.ingest(fs.createReadStream('m.eml'), { user: 'alice' });
 *   (await store.fetch(id)).pipe(process.stdout);
 *   await store.close();
 */
export class Store implements IngestDeps, CheckDeps {
  readonly tmpDir: string;
  readonly writeLock = new AsyncMutex();
  readonly index: BlobIndex;
  readonly messages: Messages;
  readonly mailboxTable: Mailboxes;
  readonly storeId: string; // this store's identity to its sync peers
  /** Mailbox state: flags, modseqs, mailboxes, copy, move, expunge (see MailboxOps). */
  readonly mail: MailboxOps;
  readonly blobStore: BlobStore;
  readonly shared: SharedBucket | null;
  readonly log: Logger;
  readonly leaseTtlMs: number;
  private readonly committer: Committer;
  private readonly reader: MessageReader;
  private readonly blobs: BlobReader;
  /** Ingests in flight in this process (group commit waits briefly for them). */
  private active = 0;
  private readonly domains: DedupDomains;
  private readonly dicts = new Map<number, Buffer>();
  private currentDict: { id: number; data: Buffer } | null | undefined;
  private closed = false;
  private readonly dictionaryAfter: number;
  private sinceDictCheck = 0;
  private readonly memory: ByteBudget;
  /** Worker threads for splitting large messages (null: everything on this thread). */
  private readonly workers: BuildPool | null;
  /** Large messages are split and verified in worker threads (the event loop stays free for other sessions); small ones here. */
  private readonly preparer: Preparer;
  private readonly writeBehind: WriteBehind | null;
  /** Read only: the private directory of this process (temp files, a copy of the database), removed on close. */
  private readonly readTmp: string | null;

  private constructor(
    readonly dir: string,
    readonly db: Db,
    backends: { primary: BlobBackend; cold: BlobBackend | null; shared?: SharedBucket | null },
    readonly config: StoreConfig,
    private readonly secret: Buffer,
    opts: StoreOptions & { readTmp?: string | null },
    /** Where the blobs live (as configured when the store was created). */
    readonly backendConfig: BackendConfig = { kind: 'fs' },
  ) {
    this.readTmp = opts.readTmp ?? null;
    this.tmpDir = this.readTmp ?? path.join(dir, 'tmp');
    if (!this.readTmp) {
      makeDirsSync(this.tmpDir);
      cleanStaleTemps(this.tmpDir);
    }
    this.log = opts.logger ?? defaultLogger();
    this.domains = new DedupDomains(config.dedupScope, secret);
    this.index = new BlobIndex(db, this.writeLock);
    this.messages = new Messages(db);
    this.mailboxTable = new Mailboxes(db);
    this.storeId = storeIdOf(secret);
    this.mail = new MailboxOps({
      db,
      writeLock: this.writeLock,
      messages: this.messages,
      mailboxes: this.mailboxTable,
      index: this.index,
      refsOf: (row) => countRefs(blobRefs(this.reader.layout(row, false))).values(),
      uidValidity: () => this.uidValidity,
      storeId: () => this.storeId,
    });
    this.leaseTtlMs = (opts.leaseTtlSeconds ?? LEASE_TTL_SECONDS) * 1000;
    this.shared = backends.shared ?? null;
    this.blobStore = new BlobStore(backends.primary, { ...DEFAULT_COMPRESSION, ...opts.compression }, this.tmpDir, backends.cold, this.shared?.objects ?? null);
    this.blobs = new BlobReader({ index: this.index, blobStore: this.blobStore, log: this.log, domainKey: (d) => this.domainKey(d), isOpen: () => !this.closed && !this.readTmp });
    this.reader = new MessageReader({ messages: this.messages, blobs: this.blobs, tmpDir: this.tmpDir, dictionary: (id) => this.dictionary(id) });
    this.committer = groupCommitter(this, (n) => this.active > n);
    this.dictionaryAfter = opts.dictionaryAfter ?? 256;
    this.memory = new ByteBudget(opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES);
    const n = opts.workers ?? DEFAULT_WORKERS();
    const workers = n > 0 ? new BuildPool(n) : null;
    this.workers = workers;
    const offloadAbove = opts.offloadAbove ?? DEFAULT_OFFLOAD_ABOVE_BYTES;
    this.preparer = {
      prepare: (spool, o) => (workers && spool.size >= offloadAbove ? workers.prepare(spool, o) : prepareMessage(spool, o)),
      sharedAbove: workers ? offloadAbove : Infinity,
    };
    const writeBehind = backendConfig.kind === 'tiered' && backendConfig.writeBehind;
    this.writeBehind = writeBehind ? new WriteBehind(this, opts.writeBehindMaxBytes ?? DEFAULT_WRITE_BEHIND_MAX_BYTES) : null;
    if (opts.background) this.writeBehind?.start();
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
    const file = path.join(dir, 'meta.sqlite');
    const { db, readTmp } = openStoreDatabase(dir, opts);
    try {
      if (opts.readOnly && !isCreated(db)) throw new MailcasError('E_STORE', `the store in ${path.resolve(dir)} was never completed: open it once as a user who may write it`);
      // an existing store is opened without the write lock; creating one takes it (IMMEDIATE), so two
      // processes creating the same store at once agree on its settings and secret
      const read = (): { config: StoreConfig; secret: Buffer; blobs: BackendConfig } => ({ config: loadConfig(db, opts), secret: loadSecret(db), blobs: loadBackendConfig(db, opts, () => new BlobIndexView(db).count()) });
      const { config, secret, blobs } = (isCreated(db) && !opts.s3) || opts.readOnly ? read() : immediate(db, read);
      const opened = opts.backend ? { primary: opts.backend, cold: opts.coldBackend ?? null } : openBackends(dir, blobs, opts.retry, !!opts.readOnly);
      return new Store(dir, db, { ...opened, cold: withLatePuts(opened.cold) }, config, secret, { ...opts, readTmp }, blobs);
    } catch (e) {
      db.close();
      if (readTmp) fs.rmSync(readTmp, { recursive: true, force: true });
      throw sqliteError(e, file);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new MailcasError('E_CLOSED', 'store is closed');
  }

  domainOf(user: string): string {
    return this.domains.of(user);
  }

  domainKey(domain: string): Buffer | null {
    return this.domains.key(domain);
  }

  dictionary(id: number): Buffer | null {
    let d = this.dicts.get(id);
    if (!d) {
      const found = dictionaryById(this.db, id);
      if (!found) return null;
      this.dicts.set(id, (d = found));
    }
    return d;
  }

  currentDictionary(): { id: number; data: Buffer } | null {
    if (this.currentDict === undefined) this.currentDict = currentDictionary(this.db);
    return this.currentDict;
  }

  // ---- ingest

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
  async deliver(input: MessageInput, recipients: Recipient[], opts: { received?: number; skipExisting?: boolean | ResumeState } = {}): Promise<RecipientResult[]> {
    this.assertOpen();
    this.writeBehind?.check();
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

  // ---- reading
  /**
   * One message as FETCH sees it (IMAP, the HTTP service): its size, MIME
   * tree and bytes by range, reading only the blobs a request needs.
   */
  access(id: string, opts: { user?: string } = {}): MessageAccess {
    this.assertOpen();
    return this.reader.access(id, opts.user);
  }

  /** The exact bytes of a message as a stream, checked against its hash as they go out (E_INTEGRITY errors the stream). */
  async fetch(id: string, opts: { user?: string } = {}): Promise<Readable> {
    this.assertOpen();
    return this.reader.fetch(id, opts.user);
  }

  /** The whole message in memory (small messages, tests), checked like fetch. */
  async fetchBuffer(id: string, opts: { user?: string; readAhead?: number } = {}): Promise<Buffer> {
    this.assertOpen();
    return this.reader.buffer(this.reader.row(id, opts.user), opts.readAhead);
  }

  /** Blob reads (backend GETs) and bytes read since the store was opened. */
  readStats(): { reads: number; bytes: number } {
    return { ...this.blobStore.stats };
  }

  get(id: string, opts: { user?: string } = {}): MessageRecord {
    this.assertOpen();
    return toRecord(this.reader.row(id, opts.user));
  }

  /** Messages of a user (optionally one mailbox), in id order. */
  list(user: string, mailbox?: string): MessageRecord[] {
    this.assertOpen();
    return this.messages.list(user, mailbox).map(toRecord);
  }

  /** A page of a user's messages (optionally one mailbox) in id order, after the id `after`. */
  listPage(user: string, opts: { mailbox?: string; after?: number; limit: number }): MessageRecord[] {
    this.assertOpen();
    return this.messages.listPage(user, opts.mailbox, opts.after ?? 0, opts.limit).map(toRecord);
  }

  /**
   * IMAP UIDVALIDITY of every mailbox of this store: fixed for its life.
   * Message ids are never reused (AUTOINCREMENT), so the ids of a mailbox's
   * messages serve as its UIDs for ever.
   */
  get uidValidity(): number {
    return uidValidityOf(this.secret);
  }

  /** The lowest id a message stored from now on can get (IMAP UIDNEXT). */
  nextId(): number {
    this.assertOpen();
    return this.messages.nextId();
  }

  /** Every user of the store with their message count and bytes (as delivered). */
  users(): { user: string; messages: number; bytes: number }[] {
    this.assertOpen();
    return this.messages.users();
  }

  /** A user's mailboxes: name, message count, total size, highest id. */
  mailboxes(user: string): { name: string; messages: number; bytes: number; lastId: number }[] {
    this.assertOpen();
    return this.messages.mailboxes(user);
  }

  /** Removes messages; their blobs lose a reference each (gc reclaims unreferenced blobs after the grace period). */
  async expunge(user: string, ids: string[]): Promise<number> {
    this.assertOpen();
    const rows = ids.map((id) => this.reader.row(id, user));
    return (await this.mail.expunge(user, rows.map((r) => r.id))).length;
  }

  // ---- the lifecycle: gc, tier, compact, check, report

  async gc(opts: GcOptions = {}): Promise<GcReport> {
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
  async collect(opts: CollectOptions = {}): Promise<CollectReport> {
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
  async tier(opts: Partial<TierOptions> = {}): Promise<TierReport> {
    this.assertOpen();
    const policy = this.backendConfig.kind === 'tiered' ? this.backendConfig.policy : DEFAULT_TIER_POLICY;
    return runTier(this, { olderThanMs: policy.olderThanMs, minSize: policy.minSize, ...opts });
  }

  /** Uploads everything still only in the hot tier (write-behind's backlog), now. */
  async flush(): Promise<TierReport> {
    this.assertOpen();
    return flushAll(this);
  }

  /** Recompresses older mail's header blocks with a dictionary trained on the store now (see runCompact); 30 days and older by default. */
  async compact(opts: Partial<CompactOptions> = {}): Promise<CompactReport> {
    this.assertOpen();
    const { report, dictionary } = await runCompact(this, { olderThanMs: DEFAULT_TIER_POLICY.olderThanMs, ...opts });
    if (dictionary) this.currentDict = dictionary;
    return report;
  }

  async check(opts: CheckOptions = {}): Promise<CheckReport> {
    this.assertOpen();
    return runCheck(this, opts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writeBehind?.stop();
    await this.writeLock.run(() => {});
    this.closed = true;
    await this.workers?.close();
    if (!this.readTmp) syncRelaxed(this.db);
    await this.blobStore.backend.close();
    await this.blobStore.cold?.close();
    await this.shared?.close();
    this.db.close();
    if (this.readTmp) fs.rmSync(this.readTmp, { recursive: true, force: true });
  }
}
