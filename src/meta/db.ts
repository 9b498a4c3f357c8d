import path from 'node:path';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { MailcasError } from '../errors.js';
import { busyTimeoutMs, WAL_SIZE_LIMIT_BYTES } from '../limits.js';
import { ADDED_COLUMNS, INDEXES_ON_ADDED_COLUMNS, MAILBOX_ROWS_UPGRADE, MIGRATE_1_TO_2, SCHEMA_SQL, SCHEMA_VERSION } from './schema.js';
import { computeMissingLayoutSums } from './layout-sum-upgrade.js';

export type Db = Database.Database;

/** Serialises this process's write transactions (a transaction held across awaits, such as gc's, runs inside it). */
export interface WriteLock {
  run<T>(fn: () => Promise<T> | T): Promise<T>;
}

/**
 * Opens (creating when needed) the metadata database. WAL with
 * synchronous=FULL: a commit that returned is on disk.
 *
 * Opening an existing, current store takes no write lock: readers (fetch,
 * report, check) never wait for a writer. Creating or upgrading the schema
 * runs in one IMMEDIATE transaction, re-checked inside it.
 */
/** The database file this process opened last: named in errors raised where the caller did not say. */
let lastFile: string | undefined;

export function openDb(file: string, opts: { readonly?: boolean } = {}): Db {
  lastFile = file;
  let db: Db;
  try {
    db = new Database(file, opts.readonly ? { readonly: true, fileMustExist: true } : {});
  } catch (e) {
    throw storeError(e, file);
  }
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs()}`);
    if (opts.readonly) return db;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new MailcasError('E_STORE', `store schema version ${version} is newer than this mailcas (${SCHEMA_VERSION}): upgrade mailcas`);
    if (version === 0 && !db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'messages'").get()) db.pragma('page_size = 4096');
    if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = OFF');
    db.pragma('cache_size = -16000');
    // a long reader keeps the WAL from being checkpointed; once it is, the file shrinks back to this
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    if (version < SCHEMA_VERSION) {
      immediate(db, () => {
        const v = db.pragma('user_version', { simple: true }) as number; // another process may have done it
        if (v === SCHEMA_VERSION) return;
        if (v === 1) db.exec(MIGRATE_1_TO_2);
        db.exec(SCHEMA_SQL);
        for (const [table, column, decl] of ADDED_COLUMNS) if (!hasColumn(db, table, column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${decl}`);
        db.exec(INDEXES_ON_ADDED_COLUMNS);
        if (v < 6) computeMissingLayoutSums(db);
        if (v < 7) db.exec(MAILBOX_ROWS_UPGRADE);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      });
    }
    return db;
  } catch (e) {
    db.close();
    throw storeError(e, file);
  }
}

/** A connection's prepared statements by their SQL: each prepared once, on first use (the tables' owners use one each). */
export function statementCache(db: Db): (sql: string) => Database.Statement {
  const stmts = new Map<string, Database.Statement>();
  return (sql) => {
    let s = stmts.get(sql);
    if (!s) stmts.set(sql, (s = db.prepare(sql)));
    return s;
  };
}

/** Whether the database has this table (a store of an older schema opened read-only, not upgraded, may not). */
export function hasTable(db: Db, table: string): boolean {
  return !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
}

/** Whether a table has this column (see hasTable). */
export function hasColumn(db: Db, table: string, column: string): boolean {
  return !!db.prepare('SELECT 1 FROM pragma_table_info(?) WHERE name = ?').get(table, column);
}

/**
 * Runs fn in one IMMEDIATE transaction: the write lock is taken at BEGIN
 * (waiting up to the busy timeout), so a transaction that reads before it
 * writes can never fail half-way with SQLITE_BUSY. Every writer uses this.
 */
export function immediate<T>(db: Db, fn: () => T): T {
  try {
    return db.transaction(fn).immediate();
  } catch (e) {
    throw sqliteError(e);
  }
}

/** A relaxed commit's WAL is synced (a passive checkpoint) this long after it, at most. */
export const RELAXED_SYNC_MS = 1000;
const syncTimers = new WeakMap<Db, NodeJS.Timeout>();
const syncStatements = new WeakMap<Db, { normal: Database.Statement; full: Database.Statement }>();

/**
 * Like immediate, for changes that may be lost on power loss but never half
 * made: IMAP flag changes (Dovecot does not fsync its index log for them
 * either). The transaction commits without waiting for an fsync (WAL with
 * synchronous=NORMAL: atomic, and durable once the WAL is synced); a passive
 * checkpoint syncs it within RELAXED_SYNC_MS. A message commit that follows
 * (synchronous=FULL) syncs it too. Call inside the write lock.
 */
export function relaxedImmediate<T>(db: Db, lock: WriteLock, fn: () => T): T {
  let sync = syncStatements.get(db);
  if (!sync) syncStatements.set(db, (sync = { normal: db.prepare('PRAGMA synchronous = NORMAL'), full: db.prepare('PRAGMA synchronous = FULL') }));
  sync.normal.run();
  try {
    return immediate(db, fn);
  } finally {
    sync.full.run();
    if (!syncTimers.has(db)) {
      const t = setTimeout(() => {
        syncTimers.delete(db);
        void lock.run(() => {
          if (db.open && !db.inTransaction) db.pragma('wal_checkpoint(PASSIVE)');
        });
      }, RELAXED_SYNC_MS);
      t.unref();
      syncTimers.set(db, t);
    }
  }
}

/** Syncs what relaxed commits left unsynced, now (before the database is closed). */
export function syncRelaxed(db: Db): void {
  const t = syncTimers.get(db);
  if (!t) return;
  clearTimeout(t);
  syncTimers.delete(db);
  if (db.open && !db.inTransaction) db.pragma('wal_checkpoint(PASSIVE)');
}

/**
 * Maps SQLite's errors to mailcas errors at the boundary: a busy or locked
 * database and a full disk are temporary (exit 75, LMTP 4xx); a damaged
 * or unreadable database is a store problem with a stated remedy.
 */
export function sqliteError(e: unknown, file: string | undefined = lastFile): unknown {
  if (!(e instanceof Database.SqliteError)) return e;
  const code = e.code ?? '';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new MailcasError('E_BUSY', `the store is busy: another process held its database lock for over ${busyTimeoutMs() / 1000} s; try again later`, {
      cause: e,
      transient: true,
    });
  }
  if (code.startsWith('SQLITE_FULL')) return new MailcasError('E_STORE', `the store's disk is full: ${e.message}`, { cause: e, transient: true });
  if (code.startsWith('SQLITE_IOERR')) {
    // SQLite reports a write that found no space as an I/O error: say which it is when the volume is full
    const free = file ? freeBytes(file) : null;
    if (free !== null && free < 1024 * 1024) {
      return new MailcasError('E_STORE', `the store's disk is full (${free} bytes free on the volume of ${file}): free space, then try again`, { cause: e, transient: true });
    }
    return new MailcasError('E_STORE', `I/O error on the store's database${file ? ` ${file}` : ''}: ${e.message}`, { cause: e, transient: true });
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new MailcasError(
      'E_STORE',
      `the store's database${file ? ` ${file}` : ''} is damaged (${e.message}): restore it from a backup, then run mailcas check`,
      { cause: e },
    );
  }
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM')) {
    return new MailcasError('E_STORE', `cannot write the store's database${file ? ` ${file}` : ''}: ${e.message}`, { cause: e });
  }
  return e;
}

function storeError(e: unknown, file: string): unknown {
  const m = sqliteError(e, file);
  if (m !== e) return m;
  if (e instanceof MailcasError) return e;
  const why = fs.existsSync(file) ? (e as Error).message : `${(e as Error).message} (does the store directory exist and is it writable?)`;
  return new MailcasError('E_STORE', `cannot open the store's database ${file}: ${why}`, { cause: e });
}

/** Bytes free to this user on the volume holding `file`; null when that cannot be told. */
function freeBytes(file: string): number | null {
  try {
    const st = fs.statfsSync(path.dirname(file));
    return st.bavail * st.bsize;
  } catch {
    return null;
  }
}

export function getMeta(db: Db, key: string): Buffer | string | number | null {
  const r = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: Buffer | string | number } | undefined;
  return r ? r.value : null;
}

export function setMeta(db: Db, key: string, value: Buffer | string | number): void {
  db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}

export function bumpCounter(db: Db, name: string, by = 1): void {
  db.prepare('INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value').run(name, by);
}

export function counter(db: Db, name: string): number {
  const r = db.prepare('SELECT value FROM counters WHERE name = ?').get(name) as { value: number } | undefined;
  return r?.value ?? 0;
}

/**
 * Runs fn inside this process's write lock and one IMMEDIATE transaction
 * (none for a dry run) that stays open across fn's awaits: backend
 * deletions happen while no other writer (in this process or another) can
 * take a lease or commit a reference.
 */
export async function writeTxn<T>(db: Db, lock: WriteLock, dry: boolean, fn: () => Promise<T>): Promise<T> {
  return lock.run(async () => {
    if (dry) return fn();
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      throw sqliteError(e);
    }
    try {
      const r = await fn();
      db.exec('COMMIT');
      return r;
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw sqliteError(e);
    }
  });
}

/**
 * Bytes the database occupies: its pages in use in the committed state
 * (what the file holds once the WAL is checkpointed). Free-list pages are
 * reusable space and not counted; the WAL file is transient and not counted.
 */
export function dbSize(db: Db): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return (pages - free) * pageSize;
}

/** Runs fn on one consistent snapshot of the database, read on a read-only connection of its own (no lock is taken). */
export function readSnapshot<T>(file: string, fn: (db: Db) => T): T {
  const reader = openDb(file, { readonly: true });
  try {
    reader.exec('BEGIN');
    const r = fn(reader);
    reader.exec('COMMIT');
    return r;
  } finally {
    reader.close();
  }
}

/**
 * Opens a store's database for reading only, as a user who may read the
 * store but not write it. SQLite keeps a WAL database's -wal and -shm files
 * only while a connection is open: with none (no writer running), a
 * read-only connection cannot make them and fails; then the database, all
 * of it in the main file, is read from a private copy (removed on close).
 */
export function openDbReadOnly(file: string, tmpDir: string): Db {
  try {
    const db = openDb(file, { readonly: true });
    try {
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (!/^SQLITE_(READONLY|CANTOPEN)/.test(code) || fs.existsSync(`${file}-wal`)) throw sqliteError(e, file);
  }
  const copy = path.join(tmpDir, 'meta.sqlite');
  fs.copyFileSync(file, copy);
  if (fs.existsSync(`${file}-wal`)) throw new MailcasError('E_BUSY', 'a writer started while the database was being copied for reading: try again', { transient: true });
  return openDb(copy, { readonly: true });
}
