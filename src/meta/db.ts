import Database from 'better-sqlite3';
import { MailcasError } from '../errors.js';
import { SQLITE_BUSY_TIMEOUT_MS } from '../limits.js';
import { SCHEMA_SQL, SCHEMA_VERSION } from './schema.js';

export type Db = Database.Database;

/**
 * Opens (creating when needed) the metadata database. WAL with
 * synchronous=FULL: a commit that returned is on disk.
 */
export function openDb(file: string): Db {
  let db: Db;
  try {
    db = new Database(file);
  } catch (e) {
    throw new MailcasError('E_USAGE', `cannot open metadata database ${file}: ${(e as Error).message}`, { cause: e });
  }
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  const fresh = (db.pragma('user_version', { simple: true }) as number) === 0 && !db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'messages'").get();
  if (fresh) db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = OFF');
  db.pragma('cache_size = -16000');
  const v = db.pragma('user_version', { simple: true }) as number;
  if (v > SCHEMA_VERSION) {
    db.close();
    throw new MailcasError('E_USAGE', `store schema version ${v} is newer than this mailcas (${SCHEMA_VERSION})`);
  }
  db.exec(SCHEMA_SQL);
  if (v < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  return db;
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
