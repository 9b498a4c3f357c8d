// Two-way sync between stores (issue 24, first slice: a peer store directory): both sides converge on the
// same messages, flags and mailboxes; each rule of docs/SYNC.md has a case; a second sync has nothing to
// do; syncs killed at random moments resume without loss or duplicates, check clean on both sides.
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { syncUser, type SyncReport } from '../src/sync/sync-user.js';
import { silentLogger } from '../src/util/logger.js';
import { messageWith } from './mailgen.js';
import { BIN, runCli, tmpDir } from './helpers.js';

const open = (dir: string) => Store.open(dir, { logger: silentLogger, workers: 0 });
const msg = (i: number | string, extra = '') => Buffer.from(`From: s${i}@example.org\r\nSubject: m${i}\r\nMessage-ID: <m${i}@t>\r\n\r\nbody ${i}${extra}\r\n`);

/** A store's view of a user: per mailbox, the sorted list of (message hash, flags). */
function view(s: Store, user: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of s.mail.list(user)) out[m.name] = s.list(user, m.name).map((r) => `${r.hash.slice(0, 12)} ${r.flags.join(',')}`).sort();
  return out;
}

const nothing = (r: SyncReport): boolean =>
  [r.sent, r.received].every((c) => c.messages + c.paired + c.flags + c.expunges + c.mailboxesCreated + c.mailboxesDeleted + c.mailboxesRecovered === 0) && r.conflicts === 0;

describe('two-way sync between stores', () => {
  it('new mail, flags, expunges and mailboxes on each side converge; the next sync does nothing; parts are not written twice', async () => {
    const a = await open(tmpDir());
    const b = await open(tmpDir());
    const pdf = crypto.randomBytes(300_000);
    const ia = [];
    for (let i = 0; i < 5; i++) ia.push((await a.ingest(msg(`a${i}`), { user: 'u' })).id);
    await a.ingest(messageWith(pdf, { subject: 'with the pdf' }), { user: 'u', mailbox: 'Docs' });
    await b.ingest(messageWith(pdf, { subject: 'the same pdf, another message' }), { user: 'u' });
    for (let i = 0; i < 3; i++) await b.ingest(msg(`b${i}`), { user: 'u', mailbox: 'Lists' });
    const r1 = await syncUser(a, b, 'u');
    expect(view(a, 'u')).toEqual(view(b, 'u'));
    expect(r1.sent).toMatchObject({ messages: 6, mailboxesCreated: 1 });
    expect(r1.received).toMatchObject({ messages: 4, mailboxesCreated: 1 });
    // the pdf was on b already: sending the message wrote no blob for it there
    expect(r1.sent.blobBytes).toBeLessThan(20_000);
    expect(nothing(await syncUser(a, b, 'u'))).toBe(true);
    expect(nothing(await syncUser(b, a, 'u'))).toBe(true);

    // changes on both sides: flags, an expunge, a mailbox, new mail
    await a.mail.setFlags('u', [Number(ia[0])], 'add', ['\\Seen']);
    await a.mail.expunge('u', [Number(ia[1])]);
    const bInbox = b.list('u', 'INBOX').map((m) => Number(m.id));
    await b.mail.setFlags('u', [bInbox[bInbox.length - 1]], 'add', ['\\Flagged', 'Work']);
    await b.mail.create('u', 'Archive');
    await b.ingest(msg('b-late'), { user: 'u', mailbox: 'Archive' });
    const r2 = await syncUser(a, b, 'u');
    expect(view(a, 'u')).toEqual(view(b, 'u'));
    expect(r2.sent).toMatchObject({ flags: 1, expunges: 1, messages: 0 });
    expect(r2.received).toMatchObject({ flags: 1, messages: 1, mailboxesCreated: 1 });
    expect(nothing(await syncUser(a, b, 'u'))).toBe(true);
    for (const s of [a, b]) expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    await a.close();
    await b.close();
  });

  it('the rules of docs/SYNC.md, one case each', async () => {
    const a = await open(tmpDir());
    const b = await open(tmpDir());
    // the same message added on both: one copy each side, no duplicates
    await a.ingest(msg('same'), { user: 'u' });
    await b.ingest(msg('same'), { user: 'u' });
    const r = await syncUser(a, b, 'u');
    expect(r.sent.paired + r.received.paired).toBe(1);
    expect([a.list('u').length, b.list('u').length]).toEqual([1, 1]);

    const [x] = a.list('u').map((m) => Number(m.id));
    const [y] = b.list('u').map((m) => Number(m.id));
    // flags changed on both: merged (the union), counted as a conflict
    await a.mail.setFlags('u', [x], 'add', ['\\Seen', 'FromA']);
    await b.mail.setFlags('u', [y], 'add', ['\\Flagged', 'FromB']);
    expect((await syncUser(a, b, 'u')).conflicts).toBe(1);
    expect(a.get(String(x)).flags).toEqual(['\\Seen', '\\Flagged', 'FromA', 'FromB']);
    expect(b.get(String(y)).flags).toEqual(a.get(String(x)).flags);

    // expunged on one side, flagged on the other: the expunge wins
    await a.mail.expunge('u', [x]);
    await b.mail.setFlags('u', [y], 'add', ['\\Answered']);
    await syncUser(a, b, 'u');
    expect([a.list('u').length, b.list('u').length]).toEqual([0, 0]);

    // moved on one side, expunged on the other: the moved copy is kept (a move makes a message of its new
    // mailbox; the expunge removed the old place on both)
    await a.mail.create('u', 'Moved');
    await a.ingest(msg('mv'), { user: 'u' });
    await syncUser(a, b, 'u');
    const [mvA] = a.list('u', 'INBOX').filter((m) => m.subject === 'mmv').map((m) => Number(m.id));
    const [mvB] = b.list('u', 'INBOX').filter((m) => m.subject === 'mmv').map((m) => Number(m.id));
    await a.mail.copy('u', [mvA], 'Moved', { move: true });
    await b.mail.expunge('u', [mvB]);
    await syncUser(a, b, 'u');
    for (const s of [a, b]) expect([s.list('u', 'INBOX').some((m) => m.subject === 'mmv'), s.list('u', 'Moved').map((m) => m.subject)]).toEqual([false, ['mmv']]);

    // a mailbox deleted on one side while it received mail on the other: kept, mail and all
    await a.mail.create('u', 'Projects');
    await a.ingest(msg('p1'), { user: 'u', mailbox: 'Projects' });
    await syncUser(a, b, 'u');
    await b.mail.delete('u', 'Projects');
    await a.ingest(msg('p2'), { user: 'u', mailbox: 'Projects' });
    const rec = await syncUser(a, b, 'u');
    expect(rec.sent.mailboxesRecovered).toBe(1);
    expect(view(b, 'u').Projects?.length).toBe(2);
    expect(view(a, 'u')).toEqual(view(b, 'u'));

    // a mailbox deleted on one side and unchanged on the other: deleted on both
    await b.mail.delete('u', 'Projects');
    const del = await syncUser(a, b, 'u');
    expect(del.received.mailboxesDeleted).toBe(1);
    expect(a.mail.info('u', 'Projects')).toBeNull();

    // --one-way: the peer gets this side's changes, this side is never changed
    await b.ingest(msg('only-b'), { user: 'u' });
    await a.ingest(msg('only-a'), { user: 'u' });
    const one = await syncUser(a, b, 'u', { oneWay: true });
    expect(one.received).toMatchObject({ messages: 0 });
    expect(a.list('u', 'INBOX').map((m) => m.subject)).toEqual(['monly-a']);
    expect(b.list('u', 'INBOX').map((m) => m.subject).sort()).toEqual(['monly-a', 'monly-b']);
    await syncUser(a, b, 'u');
    expect(view(a, 'u')).toEqual(view(b, 'u'));
    for (const s of [a, b]) expect((await s.check()).consistent).toBe(true);
    await a.close();
    await b.close();
  });

  it('syncs killed at named points and random moments (the CLI, SIGKILL) resume: the stores converge with no duplicate, nothing lost, expunges kept', async () => {
    const da = tmpDir();
    const db = tmpDir();
    let a = await open(da);
    let b = await open(db);
    const want = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const m = msg(`k${i}`, 'x'.repeat(i * 50));
      await (i % 2 ? a : b).ingest(m, { user: 'u', mailbox: i % 3 ? 'INBOX' : 'Other' });
      want.add(crypto.createHash('sha256').update(m).digest('hex'));
    }
    await a.close();
    await b.close();
    let kills = 0;
    let serial = 0;
    for (let round = 0; round < 12; round++) {
      // each round has work for the sync: new mail on both sides, a flag changed on each
      a = await open(da);
      b = await open(db);
      for (const s of [a, b]) {
        for (let i = 0; i < 4; i++) {
          const m = msg(`r${serial++}`, 'y'.repeat(serial * 7));
          await s.ingest(m, { user: 'u', mailbox: serial % 3 ? 'INBOX' : 'Other' });
          want.add(crypto.createHash('sha256').update(m).digest('hex'));
        }
        const ids = s.list('u').map((m) => Number(m.id));
        await s.mail.setFlags('u', [ids[Math.floor(Math.random() * ids.length)]], 'add', [`R${round}`]);
        if (round % 2) {
          // an expunge: the message leaves both stores
          const gone = ids[Math.floor(Math.random() * ids.length)];
          want.delete(crypto.createHash('sha256').update(await s.fetchBuffer(String(gone))).digest('hex'));
          await s.mail.expunge('u', [gone]);
        }
      }
      await a.close();
      await b.close();
      // killed at a named point of the sync (the n-th time it is reached), or at a random moment
      const points = ['sync-sent', 'sync-expunged', 'sync-flags'];
      const env = round % 3 === 2 ? {} : { MAILCAS_CRASH_AT: `${points[round % points.length]}:${1 + Math.floor(Math.random() * 3)}` };
      const p = spawn(process.execPath, [BIN, '--store', da, 'sync', '--user', 'u', db], { stdio: 'ignore', env: { ...process.env, ...env } });
      const t = setTimeout(() => p.kill('SIGKILL'), 150 + Math.floor(Math.random() * 400));
      const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
      clearTimeout(t);
      if (code === null) kills++;
      else expect(code).toBe(0);
    }
    const last = await runCli(['--store', da, 'sync', '--user', 'u', '--json', db]);
    expect(last.code, last.stderr.toString()).toBe(0);
    a = await open(da);
    b = await open(db);
    expect(view(a, 'u')).toEqual(view(b, 'u'));
    const hashes = async (s: Store) => Promise.all(s.list('u').map(async (m) => crypto.createHash('sha256').update(await s.fetchBuffer(m.id)).digest('hex')));
    for (const s of [a, b]) {
      const h = await hashes(s);
      expect(h.length).toBe(want.size); // no duplicate
      expect(new Set(h)).toEqual(want); // nothing lost
      expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    }
    expect(nothing(await syncUser(a, b, 'u'))).toBe(true);
    console.log(`sync kills: ${kills} of 12 runs killed before they finished`);
    await a.close();
    await b.close();
  });

  it('killed right after a copy committed on the peer: the copy is known as its source\'s partner, so the source\'s expunge follows it', async () => {
    const da = tmpDir();
    const db = tmpDir();
    let a = await open(da);
    const x = (await a.ingest(msg('x'), { user: 'u' })).id;
    await a.ingest(msg('y'), { user: 'u' });
    await a.close();
    await (await open(db)).close();
    const killed = await runCli(['--store', da, 'sync', '--user', 'u', db], { env: { MAILCAS_CRASH_AT: 'sync-sent:1' } });
    expect(killed.code).not.toBe(0);
    a = await open(da);
    await a.mail.expunge('u', [Number(x)]);
    await a.close();
    const r = await runCli(['--store', da, 'sync', '--user', 'u', '--json', db]);
    expect(r.code, r.stderr.toString()).toBe(0);
    a = await open(da);
    const b = await open(db);
    expect(a.list('u').map((m) => m.subject)).toEqual(['my']);
    expect(b.list('u').map((m) => m.subject)).toEqual(['my']);
    for (const s of [a, b]) expect((await s.check()).consistent).toBe(true);
    await a.close();
    await b.close();
  });

  it('three stores syncing in pairs: a copy that travelled A -> B -> C does not come back to A after A expunged it', async () => {
    const [a, b, c] = await Promise.all([tmpDir(), tmpDir(), tmpDir()].map(open));
    const x = (await a.ingest(msg('travels'), { user: 'u' })).id;
    await a.ingest(msg('stays'), { user: 'u' });
    await syncUser(a, b, 'u');
    await syncUser(b, c, 'u');
    await a.mail.expunge('u', [Number(x)]);
    const r = await syncUser(a, c, 'u');
    expect(r.sent.expunges).toBe(1); // c's copy: the expunge travelled
    await syncUser(a, b, 'u');
    await syncUser(b, c, 'u');
    for (const s of [a, b, c]) expect(s.list('u').map((m) => m.subject)).toEqual(['mstays']);
    // the copies carry the original's identity
    expect(c.mail.guidOf(Number(c.list('u')[0].id))).toBe(a.mail.guidOf(Number(a.list('u')[0].id)));
    for (const s of [a, b, c]) await s.close();
  });
});
