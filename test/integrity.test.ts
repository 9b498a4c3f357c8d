// Regression tests for the "Correctness first" review: each case lost an acknowledged message,
// served wrong bytes or failed with a raw SQLite error on the code before it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { SCHEMA_VERSION } from '../src/meta/schema.js';
import { FsBackend } from '../src/backend/fs-backend.js';
import { FaultBackend } from '../src/backend/fault-backend.js';
import { MailcasError } from '../src/errors.js';
import { parseParamValue } from '../src/split/header-fields.js';
import { silentLogger } from '../src/util/logger.js';
import { ROOT, corpusFiles, runCli, tmpDir } from './helpers.js';
import { messageWith } from './mailgen.js';

const open = (dir: string, extra: Partial<Parameters<typeof Store.open>[1]> = {}) => Store.open(dir, { logger: silentLogger, ...extra });
const blobPath = (dir: string, hex: string) => path.join(dir, 'blobs', hex.slice(0, 2), hex.slice(2, 4), hex);
const keys = (s: Store) => (s.db.prepare('SELECT hash FROM blobs').all() as { hash: Buffer }[]).map((r) => r.hash.toString('hex'));
const rowOf = (s: Store, hex: string) => s.db.prepare('SELECT refs, corrupt FROM blobs WHERE hash = ?').get(Buffer.from(hex, 'hex')) as { refs: number; corrupt: number } | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = (b: Buffer) => b.toString().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

function flipByte(file: string, at: number): void {
  const b = fs.readFileSync(file);
  b[at] ^= 0x01;
  fs.writeFileSync(file, b);
}

function gate(): { reached: Promise<void>; arrive: () => void; wait: Promise<void>; release: () => void } {
  let arrive!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => (arrive = r));
  const wait = new Promise<void>((r) => (release = r));
  return { reached, arrive, wait, release };
}

function node(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c) => (err += c));
    p.on('close', (code, signal) => resolve({ code, signal, stderr: err }));
  });
}

describe('acknowledged messages are never lost', () => {
  it('1. a gc that dies between deleting an object and committing leaves a row that vouches for nothing: the next ingest rewrites the object', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')));
    const s = await open(dir, { backend: fault });
    const msg = messageWith(crypto.randomBytes(60_000));
    const a = await s.ingest(msg, { user: 'u' });
    const [key] = keys(s);
    await s.expunge('u', [a.id]);
    fault.hooks = {
      afterDelete: () => {
        throw new Error('power cut'); // the transaction rolls back exactly as a kill would leave it
      },
    };
    await expect(s.gc({ graceSeconds: 0 })).rejects.toThrow('power cut');
    fault.hooks = {};
    expect(rowOf(s, key)?.refs).toBe(0);
    expect(fs.existsSync(blobPath(dir, key))).toBe(false);
    const c = await s.check();
    expect(c.danglingRows).toEqual([key]);
    expect(c.consistent).toBe(true); // nothing references it: harmless, and no ingest will trust it

    const b = await s.ingest(msg, { user: 'u' });
    expect(b.newBlobs).toBe(1); // written again, not trusted
    expect((await s.fetchBuffer(b.id)).equals(msg)).toBe(true);
    expect((await s.check()).consistent).toBe(true);
    await s.close();
  });

  it('1. the same with a real SIGKILL right after the object deletion, through the CLI', async () => {
    const store = tmpDir();
    const file = path.join(tmpDir(), 'm.eml');
    const msg = messageWith(crypto.randomBytes(60_000));
    fs.writeFileSync(file, msg);
    const id = (await runCli(['--store', store, 'ingest', '--user', 'u', file])).stdout.toString().trim();
    expect((await runCli(['--store', store, 'expunge', '--user', 'u', id])).code).toBe(0);
    const killed = await node([path.join(ROOT, 'test', 'fixtures', 'store-op.mjs'), store, 'gc-kill-after-delete']);
    expect(killed.signal).toBe('SIGKILL');
    const again = await runCli(['--store', store, 'ingest', '--user', 'u', file]);
    expect(again.code).toBe(0);
    const f = await runCli(['--store', store, 'fetch', '--user', 'u', again.stdout.toString().trim()]);
    expect(f.code).toBe(0);
    expect(f.stdout.equals(msg)).toBe(true);
    expect((await runCli(['--store', store, 'check'])).code).toBe(0);
  });

  it('2. a commit whose leases were reclaimed (clock jumped, ingest stalled) fails temporarily instead of acknowledging a message without its blob', async () => {
    const dir = tmpDir();
    const g = gate();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), {
      afterPut: async () => {
        g.arrive();
        await g.wait;
      },
    });
    const s = await open(dir, { backend: fault });
    const msg = messageWith(crypto.randomBytes(70_000));
    const ing = s.ingest(msg, { user: 'u' }).then(
      (r) => ({ r, e: null }),
      (e: MailcasError) => ({ r: null, e }),
    );
    await g.reached; // blob written, not committed
    fault.hooks = {};
    const twoHoursAhead = () => Date.now() + 2 * 3600_000;
    const gcr = await s.gc({ graceSeconds: 3600, now: twoHoursAhead });
    expect(gcr.deletedOrphans).toBe(1);
    g.release();
    const out = await ing;
    expect(out.r).toBeNull();
    expect(out.e?.code).toBe('E_LEASE_LOST');
    expect(out.e?.transient).toBe(true);
    expect(s.list('u')).toEqual([]);
    expect((await s.check()).consistent).toBe(true);
    const retry = await s.ingest(msg, { user: 'u' });
    expect((await s.fetchBuffer(retry.id)).equals(msg)).toBe(true);
    await s.close();
  });

  it('2. a long ingest renews its leases, so gc keeps its blob however long it takes', async () => {
    const dir = tmpDir();
    const g = gate();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), {
      afterPut: async () => {
        g.arrive();
        await g.wait;
      },
    });
    const s = await open(dir, { backend: fault, leaseTtlSeconds: 2 });
    const msg = messageWith(crypto.randomBytes(70_000));
    const ing = s.ingest(msg, { user: 'u' });
    await g.reached;
    fault.hooks = {};
    await sleep(3500); // past the lease's first expiry
    const gcr = await s.gc({ graceSeconds: 0 });
    expect(gcr.deletedOrphans).toBe(0);
    expect(gcr.keptLeased).toBe(1);
    g.release();
    const r = await ing;
    expect((await s.fetchBuffer(r.id)).equals(msg)).toBe(true);
    await s.close();
  });

  it('3. check --repair never lowers the counts of blobs a message it cannot decode may use; gc then deletes nothing', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const m1 = messageWith(crypto.randomBytes(50_000), { subject: 'one' });
    const a = await s.ingest(m1, { user: 'u' });
    const [key] = keys(s);
    const saved = (s.db.prepare('SELECT layout FROM messages WHERE id = ?').get(a.id) as { layout: Buffer }).layout;
    s.db.prepare('UPDATE messages SET layout = ? WHERE id = ?').run(Buffer.from('not a layout'), a.id);
    const c = await s.check({ repair: true });
    expect(c.corruptMessages).toEqual([a.id]);
    expect(c.consistent).toBe(false);
    expect(c.repairNote).toMatch(/cannot be decoded/);
    expect(rowOf(s, key)?.refs).toBe(1);
    expect((await s.gc({ graceSeconds: 0 })).deletedBlobs).toBe(0);
    s.db.prepare('UPDATE messages SET layout = ? WHERE id = ?').run(saved, a.id);
    expect((await s.fetchBuffer(a.id)).equals(m1)).toBe(true);
    expect((await s.check()).consistent).toBe(true);
    await s.close();
  });
});

describe('wrong bytes are never served', () => {
  it('4. a corrupt blob is marked on read, listed with the messages it damages, and healed by the next ingest of the same content', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const m = messageWith(crypto.randomBytes(80_000));
    const a = await s.ingest(m, { user: 'u' });
    const [key] = keys(s);
    flipByte(blobPath(dir, key), 5000);
    const err = await s.fetchBuffer(a.id).catch((e) => e);
    expect(err.code).toBe('E_INTEGRITY');
    expect(err.message).toMatch(new RegExp(`message ${a.id}, part 2: blob ${key}`));
    expect(rowOf(s, key)?.corrupt).toBe(1);
    const c = await s.check();
    expect(c.corruptBlobs).toEqual([key]);
    expect(c.damagedMessages).toEqual([a.id]);
    expect(c.consistent).toBe(false);

    const b = await s.ingest(m, { user: 'v' }); // same content: rewrites the damaged object instead of linking to it
    expect((await s.fetchBuffer(b.id)).equals(m)).toBe(true);
    expect((await s.fetchBuffer(a.id)).equals(m)).toBe(true);
    expect(rowOf(s, key)).toEqual({ refs: 2, corrupt: 0 });
    expect((await s.check({ deep: true })).consistent).toBe(true);
    await s.close();
  });

  it('4. damage no read has seen yet is found by check --deep, which marks it for healing', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const m = messageWith(crypto.randomBytes(80_000));
    const a = await s.ingest(m, { user: 'u' });
    const [key] = keys(s);
    flipByte(blobPath(dir, key), 100);
    const c = await s.check({ deep: true });
    expect(c.corruptBlobs).toEqual([key]);
    expect(c.damagedMessages).toEqual([a.id]);
    expect(rowOf(s, key)?.corrupt).toBe(1);
    await s.ingest(m, { user: 'u' });
    expect((await s.fetchBuffer(a.id)).equals(m)).toBe(true);
    await s.close();
  });

  it('5. fetch never writes a byte it has not verified: a small message not at all, a large one only up to the damaged chunk', async () => {
    const store = tmpDir();
    const small = messageWith(crypto.randomBytes(100_000), { subject: 'small' });
    const big = messageWith(crypto.randomBytes(3 * 1024 * 1024), { subject: 'big' });
    const files = [small, big].map((m, i) => {
      const f = path.join(tmpDir(), `${i}.eml`);
      fs.writeFileSync(f, m);
      return f;
    });
    const lines = json((await runCli(['--store', store, 'import', '--user', 'u', '--json', ...files])).stdout).filter((l) => l.id);
    const s = await open(store);
    const keyOf = (size: number) => (s.db.prepare('SELECT hash FROM blobs WHERE size = ?').get(size) as { hash: Buffer }).hash.toString('hex');
    const smallKey = keyOf(100_000);
    const bigKey = keyOf(3 * 1024 * 1024);
    await s.close();
    flipByte(blobPath(store, smallKey), 1724);
    const bigCorruptAt = 1.5 * 1024 * 1024; // inside the second 1 MiB chunk
    flipByte(blobPath(store, bigKey), bigCorruptAt);

    const f1 = await runCli(['--store', store, 'fetch', '--user', 'u', lines[0].id]);
    expect(f1.code).not.toBe(0);
    expect(f1.stdout.length).toBe(0);
    expect(f1.stderr.trim().split('\n')).toHaveLength(1);
    expect(f1.stderr).toMatch(new RegExp(`^mailcas: message ${lines[0].id}, part 2: blob ${smallKey}`));

    const f2 = await runCli(['--store', store, 'fetch', '--user', 'u', lines[1].id]);
    expect(f2.code).not.toBe(0);
    expect(f2.stdout.equals(big.subarray(0, f2.stdout.length))).toBe(true);
    // the last group that chunk 0 alone determines, as encoded in the message (76 columns, CRLF)
    const bodyStart = big.indexOf('\r\n\r\n', big.indexOf('base64')) + 4;
    const groups = Math.floor((1024 * 1024) / 3);
    const limit = bodyStart + groups * 4 + Math.floor((groups * 4) / 76) * 2 + 2;
    expect(f2.stdout.length).toBeLessThanOrEqual(limit);
    expect(f2.stderr).toMatch(/chunk 1/);
  });

  it('5. export writes each file under a temp name, goes on past a damaged message, names it and its part, and exits non-zero', async () => {
    const store = tmpDir();
    const msgs = [0, 1, 2].map((i) => messageWith(crypto.randomBytes(30_000 + i), { subject: `m${i}` }));
    const ids: string[] = [];
    for (const m of msgs) ids.push((await runCli(['--store', store, 'ingest', '--user', 'u'], { input: m })).stdout.toString().trim());
    const s = await open(store);
    const damagedKey = (s.db.prepare('SELECT hash FROM blobs WHERE size = ?').get(30_001) as { hash: Buffer }).hash.toString('hex');
    await s.close();
    flipByte(blobPath(store, damagedKey), 10);
    const out = tmpDir();
    const r = await runCli(['--store', store, 'export', '--user', 'u', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`mailcas: message ${ids[1]}, part 2: blob ${damagedKey}`));
    expect(r.stderr).toMatch(/exported 2 messages .*1 failed/);
    expect(fs.readdirSync(out).sort()).toEqual([`${ids[0]}.eml`, `${ids[2]}.eml`].sort());
    expect(fs.readFileSync(path.join(out, `${ids[0]}.eml`)).equals(msgs[0])).toBe(true);
    expect(fs.readFileSync(path.join(out, `${ids[2]}.eml`)).equals(msgs[2])).toBe(true);
  });

  it('6. message ids are never reused, also in a store upgraded from schema 1 (and from 2, 3, 4, 5, 6 and 7)', async () => {
    // what version 7 added (mailbox state): taken away again by every downgrade below
    // (and version 8's sync state)
    const V8 = 'DROP TABLE sync_map; DROP TABLE sync_mailboxes; DROP INDEX expunged_guid; ALTER TABLE expunged DROP COLUMN guid; ALTER TABLE messages DROP COLUMN guid;';
    const V7 = `${V8} ALTER TABLE messages DROP COLUMN flags; ALTER TABLE messages DROP COLUMN keywords; ALTER TABLE messages DROP COLUMN modseq; DROP TABLE mailboxes; DROP TABLE expunged;`;
    const dir = tmpDir();
    let s = await open(dir);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await s.ingest(Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`), { user: 'u' })).id);
    await s.expunge('u', [ids[2]]);
    const next = (await s.ingest(Buffer.from('Subject: next\r\n\r\nx\r\n'), { user: 'u' })).id;
    expect(Number(next)).toBeGreaterThan(Number(ids[2]));
    await s.close();

    // downgrade to the version-1 schema (no AUTOINCREMENT, no corrupt/chunks columns), then reopen: upgraded in place
    const db = new Database(path.join(dir, 'meta.sqlite'));
    const ddl = (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'messages'").get() as { sql: string }).sql;
    db.exec(`${ddl.replace(' AUTOINCREMENT', '').replace(/messages/, 'messages_v1')};
      INSERT INTO messages_v1 SELECT * FROM messages; DROP TABLE messages; ALTER TABLE messages_v1 RENAME TO messages;
      DELETE FROM sqlite_sequence; ALTER TABLE blobs DROP COLUMN corrupt; ALTER TABLE blobs DROP COLUMN chunks;
      DROP INDEX blobs_hot; DROP INDEX blobs_pack; DROP TABLE packs;
      ALTER TABLE messages DROP COLUMN tree; ALTER TABLE blobs DROP COLUMN tier; ALTER TABLE blobs DROP COLUMN pack; ALTER TABLE blobs DROP COLUMN pack_offset; ALTER TABLE blobs DROP COLUMN pack_length; ALTER TABLE blobs DROP COLUMN frame_offset; ALTER TABLE blobs DROP COLUMN instance; DROP TABLE shared_markers;
      ALTER TABLE messages DROP COLUMN inline_dict; ALTER TABLE dictionaries DROP COLUMN kind; ALTER TABLE messages DROP COLUMN layout_sum; ${V7}
      PRAGMA user_version = 1;`);
    db.close();
    s = await open(dir);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(s.list('u').map((m) => m.id)).toEqual([ids[0], ids[1], next]);
    await s.expunge('u', [next]);
    const after = (await s.ingest(Buffer.from('Subject: after\r\n\r\ny\r\n'), { user: 'u' })).id;
    expect(Number(after)).toBeGreaterThan(Number(next));
    expect((await s.fetchBuffer(ids[0])).toString()).toBe('Subject: 0\r\n\r\nbody 0\r\n');
    expect((await s.check()).consistent).toBe(true);
    await s.close();

    // and from version 2 (no frame_offset, inline_dict, dictionary kind, instance, shared_markers): upgraded in place
    const db2 = new Database(path.join(dir, 'meta.sqlite'));
    db2.exec(`ALTER TABLE blobs DROP COLUMN frame_offset; ALTER TABLE blobs DROP COLUMN instance; DROP TABLE shared_markers; ALTER TABLE messages DROP COLUMN inline_dict; ALTER TABLE dictionaries DROP COLUMN kind; ALTER TABLE messages DROP COLUMN layout_sum; ${V7} PRAGMA user_version = 2;`);
    db2.close();
    s = await open(dir);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    for (const [t, c] of [['blobs', 'frame_offset'], ['blobs', 'instance'], ['shared_markers', 'token'], ['messages', 'inline_dict'], ['dictionaries', 'kind'], ['packs', 'token']]) expect((s.db.prepare(`SELECT count(*) AS n FROM pragma_table_info('${t}') WHERE name = ?`).get(c) as { n: number }).n).toBe(1);
    expect((await s.fetchBuffer(ids[0])).toString()).toBe('Subject: 0\r\n\r\nbody 0\r\n');
    expect((await s.check()).consistent).toBe(true);
    await s.close();

    // and from version 3 (no shared instances: blobs.instance, blobs.settled, shared_markers; no packs.token): upgraded in place
    const db3 = new Database(path.join(dir, 'meta.sqlite'));
    db3.exec(`ALTER TABLE blobs DROP COLUMN instance; ALTER TABLE blobs DROP COLUMN settled; DROP TABLE shared_markers; ALTER TABLE packs DROP COLUMN token; ALTER TABLE messages DROP COLUMN layout_sum; ${V7} PRAGMA user_version = 3;`);
    db3.close();
    s = await open(dir);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    for (const [t, c] of [['blobs', 'instance'], ['blobs', 'settled'], ['shared_markers', 'token'], ['packs', 'token']]) expect((s.db.prepare(`SELECT count(*) AS n FROM pragma_table_info('${t}') WHERE name = ?`).get(c) as { n: number }).n).toBe(1);
    expect((await s.check()).consistent).toBe(true);
    await s.close();

    // and from version 4 (no packs.token: a pack being built did not name its builder): upgraded in place
    const db4 = new Database(path.join(dir, 'meta.sqlite'));
    db4.exec(`INSERT INTO packs(name, size, live, created) VALUES ('00112233445566778899aabbccddeeff', 10, 0, 0); ALTER TABLE packs DROP COLUMN token; ALTER TABLE messages DROP COLUMN layout_sum; ${V7} PRAGMA user_version = 4;`);
    db4.close();
    s = await open(dir);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(s.db.prepare('SELECT token FROM packs').all()).toEqual([{ token: null }]);
    expect((await s.fetchBuffer(ids[0])).toString()).toBe('Subject: 0\r\n\r\nbody 0\r\n');
    expect((await s.check()).consistent).toBe(true);
    await s.close();

    // and from version 5 (no layout checksums): every message gets its checksum, which then guards its reads
    const db5 = new Database(path.join(dir, 'meta.sqlite'));
    db5.exec(`ALTER TABLE messages DROP COLUMN layout_sum; ${V7} PRAGMA user_version = 5;`);
    db5.close();
    s = await open(dir);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(s.db.prepare('SELECT count(*) AS n FROM messages WHERE length(layout_sum) = 8').get()).toEqual({ n: 3 });
    expect((await s.fetchBuffer(ids[0])).toString()).toBe('Subject: 0\r\n\r\nbody 0\r\n');
    expect((await s.check()).consistent).toBe(true);
    s.db.prepare("UPDATE messages SET tree = CASE WHEN tree IS NULL THEN X'01' ELSE NULL END WHERE id = ?").run(Number(ids[0]));
    await expect(s.fetchBuffer(ids[0])).rejects.toThrow(`message ${ids[0]}: its header blocks, layout or MIME tree do not match their checksum`);
    const damaged = await s.check();
    expect(damaged.consistent).toBe(false);
    expect(damaged.corruptMessages).toEqual([ids[0]]);
    await s.close();

    // and from version 6 (no mailbox state): every mailbox holding mail gets its row; messages have no flags, modseq 1
    const db6 = new Database(path.join(dir, 'meta.sqlite'));
    db6.exec(`${V7} PRAGMA user_version = 6;`);
    db6.close();
    s = await open(dir);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(s.mail.list('u').map((m) => [m.name, m.messages, m.highestModseq, m.subscribed])).toEqual([['INBOX', 3, 1, true]]);
    expect(s.mail.states('u', 'INBOX').map((m) => [m.flags, m.modseq])).toEqual([[[], 1], [[], 1], [[], 1]]);
    await s.mail.setFlags('u', [Number(ids[1])], 'add', ['\\Seen']);
    expect(s.mail.info('u', 'INBOX')!.highestModseq).toBe(2);
    expect((await s.fetchBuffer(ids[1])).toString()).toBe('Subject: 1\r\n\r\nbody 1\r\n');
    await s.close();

    // and from version 7 (no sync state): the tables are made, a sync with another store works
    const db7 = new Database(path.join(dir, 'meta.sqlite'));
    db7.exec(`${V8} PRAGMA user_version = 7;`);
    db7.close();
    s = await open(dir);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    await s.expunge('u', [ids[0]]); // damaged above
    const peer = await open(tmpDir());
    const { syncUser } = await import('../src/sync/sync-user.js');
    expect((await syncUser(s, peer, 'u')).sent.messages).toBe(2);
    expect(peer.list('u').length).toBe(2);
    await peer.close();
    await s.close();
  });
});

describe('no raw lock errors, no crashes', () => {
  it('7. expunges from other processes during a large import all succeed (no "database is locked")', async () => {
    const store = tmpDir();
    const first = json((await runCli(['--store', store, 'import', '--user', 'u', '--json', '--format', 'eml', ...corpusFiles().slice(0, 40)])).stdout).filter((l) => l.id);
    const importing = runCli(['--store', store, 'import', '--user', 'v', '--format', 'eml', ...corpusFiles().slice(40, 700)]);
    const codes: number[] = [];
    const errors: string[] = [];
    for (const l of first) {
      const r = await runCli(['--store', store, 'expunge', '--user', 'u', l.id]);
      codes.push(r.code);
      if (r.code) errors.push(r.stderr);
    }
    expect((await importing).code).toBe(0);
    expect(errors).toEqual([]);
    expect(codes.every((c) => c === 0)).toBe(true);
    expect((await runCli(['--store', store, 'check'])).code).toBe(0);
  });

  it('8. readers need no write lock; a writer kept waiting fails temporarily (exit 75), in one line', async () => {
    const store = tmpDir();
    const msg = messageWith(crypto.randomBytes(20_000));
    const id = (await runCli(['--store', store, 'ingest', '--user', 'u'], { input: msg })).stdout.toString().trim();
    const holder = new Database(path.join(store, 'meta.sqlite'));
    holder.exec('BEGIN IMMEDIATE'); // another process holds the write lock
    try {
      const env = { MAILCAS_BUSY_TIMEOUT_MS: '300' };
      const f = await runCli(['--store', store, 'fetch', '--user', 'u', id], { env });
      expect(f.code).toBe(0);
      expect(f.stdout.equals(msg)).toBe(true);
      expect((await runCli(['--store', store, 'report', '--json'], { env })).code).toBe(0);
      expect((await runCli(['--store', store, 'check'], { env })).code).toBe(0);
      const w = await runCli(['--store', store, 'ingest', '--user', 'u'], { input: msg, env });
      expect(w.code).toBe(75);
      expect(w.stderr.trim().split('\n')).toHaveLength(1);
      expect(w.stderr).toMatch(/^mailcas: the store is busy/);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect((await runCli(['--store', store, 'ingest', '--user', 'u'], { input: msg })).code).toBe(0);
  });

  it('8. check --repair --deep reads blobs without holding the write lock: another process commits meanwhile', async () => {
    const dir = tmpDir();
    const g = gate();
    let paused = false;
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), {
      beforeGet: async () => {
        if (paused) return;
        paused = true;
        g.arrive();
        await g.wait;
      },
    });
    const s = await open(dir, { backend: fault });
    await s.ingest(messageWith(crypto.randomBytes(40_000), { subject: 'a' }), { user: 'u' });
    fault.hooks.beforeGet = fault.hooks.beforeGet; // armed from here on
    const repairing = s.check({ repair: true, deep: true });
    await g.reached;
    const other = await open(dir); // a second connection: another process, as far as SQLite knows
    const m2 = messageWith(crypto.randomBytes(40_000), { subject: 'b' });
    const done = await Promise.race([other.ingest(m2, { user: 'w' }), sleep(5000).then(() => 'blocked')]);
    expect(done).not.toBe('blocked');
    g.release();
    const c = await repairing;
    expect(c.consistent).toBe(true);
    expect(c.messages).toBe(2); // it looked again after the commit
    await other.close();
    await s.close();
  });

  it('9. one failing item of a group commit fails alone; the rest of its batch commits', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    s.db.exec("CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
    const msgs = Array.from({ length: 16 }, (_, i) => messageWith(crypto.randomBytes(5000), { subject: i === 7 ? 'poison' : `n${i}` }));
    const rs = await Promise.allSettled(msgs.map((m) => s.ingest(m, { user: 'u' })));
    expect(rs.map((r) => r.status)).toEqual(msgs.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
    for (const [i, r] of rs.entries()) if (r.status === 'fulfilled') expect((await s.fetchBuffer(r.value.id)).equals(msgs[i])).toBe(true);
    await s.close();
  });

  it('10. import does not follow a directory twice: a symlink loop imports each message once', async () => {
    const store = tmpDir();
    const d = tmpDir();
    fs.mkdirSync(path.join(d, 'sub'));
    fs.writeFileSync(path.join(d, 'a.eml'), 'Subject: a\n\nA\n');
    fs.writeFileSync(path.join(d, 'sub', 'b.eml'), 'Subject: b\n\nB\n');
    fs.symlinkSync('..', path.join(d, 'sub', 'loop'));
    const r = await runCli(['--store', store, 'import', '--user', 'u', '--json', d]);
    expect(r.code).toBe(0);
    expect(json(r.stdout).filter((l) => l.id)).toHaveLength(2);
  });

  it('12. parameters named like Object.prototype properties neither crash the tokenizer nor vanish', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    for (const ct of ['multipart/mixed; boundary=xx; __proto__*0=v', 'multipart/mixed; constructor*=x; boundary=xx', 'multipart/mixed; boundary=xx; toString=1; hasOwnProperty*1=z']) {
      const m = Buffer.from(`Content-Type: ${ct}\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\none\r\n--xx\r\n\r\ntwo\r\n--xx--\r\n`);
      const r = await s.ingest(m, { user: 'u' });
      expect((await s.fetchBuffer(r.id)).equals(m)).toBe(true);
      expect((s.db.prepare('SELECT count(*) AS n FROM parts WHERE message_id = ?').get(r.id) as { n: number }).n).toBe(2);
    }
    const p = parseParamValue('text/plain; toString=a; constructor=b; __proto__=c; valueOf*0=d; valueOf*1=e').params;
    expect({ ...p }).toEqual({ tostring: 'a', constructor: 'b', ['__proto__']: 'c', valueof: 'de' });
    await s.close();
  });

  it('14. check --deep running beside gc never reports a blob gc just deleted as corrupt', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    let stop = false;
    const gcLoop = (async () => {
      while (!stop) await s.gc({ graceSeconds: 0 });
    })();
    const corrupt: string[] = [];
    const checkLoop = (async () => {
      while (!stop) corrupt.push(...(await s.check({ deep: true })).corruptBlobs);
    })();
    for (let i = 0; i < 40; i++) {
      const r = await s.ingest(messageWith(crypto.randomBytes(20_000), { subject: `n${i}` }), { user: 'u' });
      await s.expunge('u', [r.id]);
    }
    stop = true;
    await gcLoop;
    await checkLoop;
    expect(corrupt).toEqual([]);
    await s.close();
  });

  it('an I/O error while checking an existing object fails the ingest temporarily and never replaces the object', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')));
    const s = await open(dir, { backend: fault });
    const m = messageWith(crypto.randomBytes(30_000));
    const a = await s.ingest(m, { user: 'u' });
    const [key] = keys(s);
    await s.expunge('u', [a.id]); // refs 0: the next ingest must check the object
    const before = fs.statSync(blobPath(dir, key));
    fault.hooks = {
      beforeGet: () => {
        throw new MailcasError('E_BACKEND', 'EMFILE: too many open files', { transient: true });
      },
    };
    const err = await s.ingest(m, { user: 'u' }).catch((e) => e);
    expect(err.code).toBe('E_BACKEND');
    expect(err.transient).toBe(true);
    const after = fs.statSync(blobPath(dir, key));
    expect(after.ino).toBe(before.ino);
    fault.hooks = {};
    const b = await s.ingest(m, { user: 'u' });
    expect((await s.fetchBuffer(b.id)).equals(m)).toBe(true);
    await s.close();
  });

  it('the WAL is kept from growing without bound once checkpointed (journal_size_limit)', async () => {
    const s = await open(tmpDir());
    expect(s.db.pragma('journal_size_limit', { simple: true })).toBeGreaterThan(0);
    await s.close();
  });
});
