// Mailbox state in the store (issue 23): flags and keywords with a modseq on every change, expunge
// records, mailboxes created, renamed and deleted, copy and move that write rows and no blob bytes,
// and reference counts that stay exact through all of it (check passes, gc keeps what is referenced).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { dbSize } from '../src/meta/db.js';
import { silentLogger } from '../src/util/logger.js';
import { messageWith } from './mailgen.js';
import { runCli, tmpDir } from './helpers.js';

const open = (dir: string) => Store.open(dir, { logger: silentLogger });
const refsOf = (s: Store, size: number) => (s.db.prepare('SELECT refs FROM blobs WHERE size = ?').get(size) as { refs: number } | undefined)?.refs;
function blobBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(path.join(dir, 'blobs'), { recursive: true, withFileTypes: true })) if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  return n;
}

describe('mailbox state', () => {
  it('flags and keywords change with a modseq each; UNCHANGEDSINCE refuses what changed after it; changes() names them', async () => {
    const s = await open(tmpDir());
    const a = await s.ingest(messageWith(crypto.randomBytes(5000), { subject: 'a' }), { user: 'u' });
    const b = await s.ingest(messageWith(crypto.randomBytes(5000), { subject: 'b' }), { user: 'u' });
    const ids = [Number(a.id), Number(b.id)];
    const m0 = s.mail.info('u', 'INBOX')!.highestModseq;
    expect(s.mail.states('u', 'INBOX').map((x) => x.flags)).toEqual([[], []]);
    expect(s.mail.info('u', 'inbox')!.unseen).toBe(2);

    const r1 = await s.mail.setFlags('u', ids, 'add', ['\\Seen', '$Junk', 'seen']);
    expect(r1.changed).toEqual(ids);
    expect(r1.states.map((x) => x.flags)).toEqual([['\\Seen', '$Junk'], ['\\Seen', '$Junk']]);
    const m1 = s.mail.info('u', 'INBOX')!.highestModseq;
    expect(m1).toBe(m0 + 1); // one modseq for the one STORE
    expect(s.mail.info('u', 'INBOX')!.unseen).toBe(0);

    // a change that changes nothing takes no modseq
    const same = await s.mail.setFlags('u', ids, 'add', ['\\Seen']);
    expect(same.changed).toEqual([]);
    expect(s.mail.info('u', 'INBOX')!.highestModseq).toBe(m1);

    await s.mail.setFlags('u', [ids[0]], 'remove', ['$junk']);
    const m2 = s.mail.info('u', 'INBOX')!.highestModseq;
    const cond = await s.mail.setFlags('u', ids, 'set', ['\\Flagged'], { unchangedSince: m1 });
    expect(cond.modified).toEqual([ids[0]]);
    expect(cond.changed).toEqual([ids[1]]);
    expect(s.get(a.id).flags).toEqual(['\\Seen']);
    expect(s.get(b.id).flags).toEqual(['\\Flagged']);

    const ch = s.mail.changes('u', 'INBOX', m2);
    expect(ch.changed.map((x) => x.uid)).toEqual([ids[1]]);
    expect(ch.vanished).toEqual([]);
    await expect(s.mail.setFlags('u', ids, 'add', ['\\Bogus'])).rejects.toThrow(/unknown system flag/);
    await expect(s.mail.setFlags('u', ids, 'add', ['bad keyword'])).rejects.toThrow(/not a keyword/);

    // another user's message is not touched
    const other = await s.mail.setFlags('v', ids, 'add', ['\\Deleted']);
    expect(other.missing).toEqual(ids);
    await s.close();
  });

  it('copy writes a row, not the 20 MB attachment; move and delete keep reference counts exact; expunges leave records', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const big = crypto.randomBytes(20 * 1024 * 1024);
    const msg = messageWith(big, { subject: 'big' });
    const m = await s.ingest(msg, { user: 'u' });
    await s.mail.setFlags('u', [Number(m.id)], 'add', ['\\Seen', 'Work']);
    await s.mail.create('u', 'Archive');
    await expect(s.mail.create('u', 'archive/')).rejects.toThrow(/empty level/);
    await expect(s.mail.create('u', 'Archive')).rejects.toThrow(/already exists/);
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    const before = { db: dbSize(s.db), blobs: blobBytes(dir) };
    const [pair] = await s.mail.copy('u', [Number(m.id)], 'Archive');
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    const grew = dbSize(s.db) - before.db + (blobBytes(dir) - before.blobs);
    expect(grew).toBeLessThan(10 * 1024);
    expect(blobBytes(dir)).toBe(before.blobs);
    expect(pair.to).toBeGreaterThan(Number(m.id));
    expect(refsOf(s, big.length)).toBe(2);
    expect(s.get(String(pair.to)).flags).toEqual(['\\Seen', 'Work']);
    expect((await s.fetchBuffer(String(pair.to))).equals(msg)).toBe(true);
    await expect(s.mail.copy('u', [Number(m.id)], 'Nowhere')).rejects.toThrow(/no mailbox/);

    // move: a new UID in the target, the source expunged (recorded), counts unchanged
    const inboxModseq = s.mail.info('u', 'INBOX')!.highestModseq;
    const [moved] = await s.mail.copy('u', [Number(m.id)], 'Archive', { move: true });
    expect(refsOf(s, big.length)).toBe(2);
    expect(s.list('u', 'INBOX')).toEqual([]);
    expect(s.mail.changes('u', 'INBOX', inboxModseq).vanished).toEqual([Number(m.id)]);
    expect(s.list('u', 'Archive').map((r) => Number(r.id))).toEqual([pair.to, moved.to]);

    // rename keeps UIDs; children move along
    await s.mail.create('u', 'Archive/2026');
    const [deep] = await s.mail.copy('u', [pair.to], 'Archive/2026');
    expect(await s.mail.rename('u', 'Archive', 'Old')).toBe(3);
    expect(s.mail.list('u').map((x) => x.name)).toEqual(['INBOX', 'Old', 'Old/2026']);
    expect(s.list('u', 'Old/2026').map((r) => Number(r.id))).toEqual([deep.to]);
    expect(refsOf(s, big.length)).toBe(3);

    // expunge of \Deleted only; then the mailbox deleted with its messages
    await s.mail.setFlags('u', [pair.to], 'add', ['\\Deleted']);
    expect(await s.mail.expungeDeleted('u', 'Old')).toEqual([pair.to]);
    expect(refsOf(s, big.length)).toBe(2);
    expect(await s.mail.delete('u', 'Old')).toBe(1);
    await expect(s.mail.delete('u', 'INBOX')).rejects.toThrow(/cannot be deleted/);
    expect(refsOf(s, big.length)).toBe(1);
    expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    expect((await s.gc({ graceSeconds: 0 })).deletedBlobs).toBe(0);
    expect((await s.fetchBuffer(String(deep.to))).equals(msg)).toBe(true);
    await s.mail.delete('u', 'Old/2026');
    expect(refsOf(s, big.length)).toBe(0);
    expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    await s.close();
  });

  it('a delivery into a mailbox takes its next modseq and makes its row; APPEND-style flags and date are stored', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const r = await s.deliver(messageWith(Buffer.from('x'.repeat(100)), { subject: 'f' }), [{ user: 'u', mailbox: 'Sent', flags: ['\\Seen', '\\Draft'] }], { received: Date.UTC(2020, 1, 2) });
    expect(r[0].ok).toBe(true);
    const id = r[0].ok ? r[0].result.id : '';
    expect(s.get(id).flags).toEqual(['\\Seen', '\\Draft']);
    expect(s.get(id).received).toBe(Date.UTC(2020, 1, 2));
    const info = s.mail.info('u', 'Sent')!;
    expect(info.highestModseq).toBe(2);
    expect(s.mail.states('u', 'Sent')).toEqual([{ uid: Number(id), flags: ['\\Seen', '\\Draft'], modseq: 2 }]);
    await expect(s.deliver(Buffer.from('Subject: x\r\n\r\nx\r\n'), [{ user: 'u', flags: ['\\Nope'] }])).rejects.toThrow(/unknown system flag/);
    await s.close();
  });
});

describe('mailbox state from the command line', () => {
  it('flags, mailbox create/rename/list/delete, copy and move with --json; list shows flags; errors name what is missing', async () => {
    const store = tmpDir();
    const cli = (args: string[], input?: Buffer) => runCli(['--store', store, ...args], { input });
    const ids: string[] = [];
    for (const sub of ['one', 'two']) {
      const r = await cli(['ingest', '--user', 'u'], Buffer.from(`Subject: ${sub}\r\n\r\n${sub}\r\n`));
      expect(r.code, r.stderr.toString()).toBe(0);
      ids.push(r.stdout.toString().trim());
    }
    const f = await cli(['flags', '--user', 'u', '--mailbox', 'INBOX', ...ids, '--add', '\\Seen', 'Work', '--json']);
    expect(f.code, f.stderr.toString()).toBe(0);
    const lines = f.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.id, l.flags, l.changed])).toEqual(ids.map((id) => [id, ['\\Seen', 'Work'], true]));
    expect((await cli(['flags', '--user', 'u', ids[0], '--remove', 'seen'])).stdout.toString()).toBe(`${ids[0]}\tWork\n`);
    const stale = await cli(['flags', '--user', 'u', ids[1], '--set', 'X', '--unchanged-since', '1', '--json']);
    expect(JSON.parse(stale.stdout.toString().trim())).toEqual({ id: ids[1], modified: true });
    expect((await cli(['mailbox', 'create', '--user', 'u', 'Archive', '--json'])).stdout.toString().trim()).toBe('{"created":"Archive"}');
    const cp = await cli(['copy', '--user', 'u', '--mailbox', 'INBOX', '--to', 'Archive', ids[0], '--json']);
    const copied = JSON.parse(cp.stdout.toString().trim());
    expect(copied).toMatchObject({ id: ids[0], mailbox: 'Archive' });
    const mv = await cli(['move', '--user', 'u', '--to', 'Archive', ids[1], '--json']);
    expect(mv.code, mv.stderr.toString()).toBe(0);
    const list = (await cli(['list', '--user', 'u', '--json'])).stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(list.map((m) => [m.mailbox, m.flags])).toEqual([
      ['INBOX', ['Work']],
      ['Archive', ['Work']],
      ['Archive', ['\\Seen', 'Work']],
    ]);
    expect((await cli(['list', '--user', 'u', '--mailbox', 'INBOX'])).stdout.toString().split('\t').pop()).toBe('Work\n');
    expect((await cli(['mailbox', 'rename', '--user', 'u', 'Archive', 'Old'])).code).toBe(0);
    const boxes = (await cli(['mailbox', 'list', '--user', 'u', '--json'])).stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(boxes.map((b) => [b.name, b.messages, b.unseen])).toEqual([
      ['INBOX', 1, 1],
      ['Old', 2, 1],
    ]);
    expect(JSON.parse((await cli(['mailbox', 'delete', '--user', 'u', 'Old', '--json'])).stdout.toString())).toEqual({ deleted: 'Old', expunged: 2 });
    const missing = await cli(['copy', '--user', 'u', '--to', 'Nowhere', ids[0]]);
    expect([missing.code, missing.stderr.toString().trim()]).toEqual([66, 'mailcas: no mailbox Nowhere']);
    const gone = await cli(['flags', '--user', 'u', '999', '--add', 'x']);
    expect([gone.code, gone.stderr.toString().trim()]).toEqual([66, 'mailcas: no message 999 of u']);
    expect((await cli(['flags', '--user', 'u', ids[0]])).code).toBe(64);
    expect((await cli(['mailbox', 'create', '--user', 'u', '--special-use', 'sent', '--subscribe', 'Sent Items'])).code).toBe(0);
    const sent = (await cli(['mailbox', 'list', '--user', 'u', '--json'])).stdout.toString().trim().split('\n').map((l) => JSON.parse(l)).find((b) => b.name === 'Sent Items');
    expect(sent).toMatchObject({ specialUse: '\\Sent', subscribed: true, messages: 0 });
    const bogus = await cli(['mailbox', 'create', '--user', 'u', '--special-use', 'Bogus', 'X']);
    expect([bogus.code, bogus.stderr.toString().trim()]).toEqual([65, 'mailcas: not a special use: Bogus (\\All \\Archive \\Drafts \\Flagged \\Junk \\Sent \\Trash)']);
    expect((await cli(['check'])).code).toBe(0);
  });
});
