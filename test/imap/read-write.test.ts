// mailcas imap read-write (issue 23), spoken to by clients nobody here wrote: Node's imapflow (APPEND,
// STORE, COPY/MOVE with COPYUID, EXPUNGE, CONDSTORE, IDLE seeing another process's delivery, flag change
// and expunge), fetchmail (fetches each unseen message once and marks it \Seen: a second run fetches
// nothing) and mbsync two-way (flags, deletions and new mail on each side; a second run has nothing to
// do). Every message a client downloads or uploads is compared byte for byte.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImapFlow } from 'imapflow';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { messageWith } from '../mailgen.js';
import { corpusFiles, runCli, tmpDir } from '../helpers.js';
import { startImap, stop } from './start-imap.js';

const sha = (b: Buffer | string): string => crypto.createHash('sha256').update(b).digest('hex');

describe('mailcas imap (IMAP4rev1 front): read-write', () => {
  const dir = tmpDir();
  const passwd = path.join(tmpDir(), 'passwd');
  // LF-only messages with a header/body separator (what fetchmail and mbsync hand back unchanged)
  const files = corpusFiles()
    .map((f) => fs.readFileSync(f))
    .filter((b) => !b.includes('\r') && b.includes('\n\n'))
    .slice(0, 60);
  // offlineimap re-serialises messages through Python's email package (a leading From_ line dropped, header
  // spacing normalised): for it, plain well-formed messages, so what it writes can be compared byte for byte
  const plain = Array.from({ length: 12 }, (_, i) =>
    Buffer.from(`From: sender${i}@example.org\nTo: oi@example.org\nSubject: plain ${i}\nMessage-ID: <plain${i}@example.org>\n\nbody ${i}\n${'line\n'.repeat(i)}`),
  );
  let server: { proc: ChildProcess; port: number };
  const client = (user = 'flow'): ImapFlow => new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user, pass: 'pw' }, logger: false });
  const open = () => Store.open(dir, { logger: silentLogger, workers: 0 });

  beforeAll(async () => {
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    for (const [i, b] of files.entries()) await s.ingest(b, { user: i < 20 ? 'fetch' : i < 40 ? 'sync' : 'flow' });
    for (const b of plain) await s.ingest(b, { user: 'oi' });
    await s.close();
    fs.writeFileSync(passwd, 'flow:{PLAIN}pw\nfetch:{PLAIN}pw\nsync:{PLAIN}pw\noi:{PLAIN}pw\n');
    server = await startImap(dir, passwd);
  });

  afterAll(async () => {
    if (server) expect(await stop(server.proc)).toBe(0);
  });

  it('imapflow: APPEND (flags, date, APPENDUID) byte-exact, STORE, COPY and MOVE with COPYUID, EXPUNGE, CONDSTORE; counts stay exact', async () => {
    const c = client();
    await c.connect();
    expect(c.capabilities.has('UIDPLUS') && c.capabilities.has('CONDSTORE') && c.capabilities.has('MOVE')).toBe(true);
    await c.mailboxCreate('Work');
    // CREATE-SPECIAL-USE over a raw socket (imapflow does not send it), then LIST through imapflow shows the attribute (RFC 6154)
    const raw = spawnSync('python3', ['-c', `import imaplib\nc = imaplib.IMAP4('127.0.0.1', ${server.port})\nc.login('flow', 'pw')\nprint(c._simple_command('CREATE', '"Sent Items"', '(USE (\\\\Sent))')[0])\nprint(c._simple_command('CREATE', 'Bad', '(USE (\\\\Bogus))')[0])\nc.logout()`], { encoding: 'utf8' });
    expect(raw.stdout.trim().split('\n'), raw.stderr).toEqual(['OK', 'NO']);
    const sent = (await c.list()).find((m) => m.path === 'Sent Items');
    expect(sent).toMatchObject({ specialUse: '\\Sent', specialUseSource: 'extension' });
    const big = messageWith(crypto.randomBytes(3 * 1024 * 1024), { subject: 'appended' });
    const appended = await c.append('INBOX', big, ['\\Seen', '$Project'], new Date('2021-03-04T05:06:07Z'));
    expect(appended).toMatchObject({ uid: expect.any(Number) });
    const lock = await c.getMailboxLock('INBOX');
    try {
      const mb = c.mailbox as { exists: number; highestModseq: bigint };
      const m0 = mb.highestModseq;
      const got = await c.fetchOne(String(appended && appended.uid), { source: true, flags: true, internalDate: true }, { uid: true });
      expect(got && sha(got.source!)).toBe(sha(big));
      expect(got && [...got.flags!]).toEqual(['\\Seen', '$Project']);
      expect(got && (got.internalDate as Date).toISOString()).toBe('2021-03-04T05:06:07.000Z');
      // every message downloaded is the one stored, byte for byte
      const sources = new Map<number, string>();
      for await (const m of c.fetch('1:*', { uid: true, source: true })) sources.set(m.uid, sha(m.source!));
      expect(sources.size).toBe(20 + 1);
      expect([...sources.values()].filter((h) => !files.slice(40, 60).some((f) => sha(f) === h) && h !== sha(big))).toEqual([]);

      const uids = [...sources.keys()];
      expect(await c.messageFlagsAdd(uids.slice(0, 3).join(','), ['\\Flagged', 'Todo'], { uid: true })).toBe(true);
      expect(await c.messageFlagsRemove(String(uids[1]), ['Todo'], { uid: true })).toBe(true);
      const flags = new Map<number, string[]>();
      for await (const m of c.fetch('1:3', { uid: true, flags: true })) flags.set(m.uid, [...m.flags!]);
      expect(flags.get(uids[0])).toEqual(['\\Flagged', 'Todo']);
      expect(flags.get(uids[1])).toEqual(['\\Flagged']);
      expect((await c.status('INBOX', { highestModseq: true })).highestModseq! > m0).toBe(true);
      // CONDSTORE: only what changed since a modseq
      const changed: number[] = [];
      for await (const m of c.fetch('1:*', { uid: true, flags: true }, { changedSince: m0 })) changed.push(m.uid);
      expect(changed.sort((a, b) => a - b)).toEqual(uids.slice(0, 3));

      const copied = await c.messageCopy(uids.slice(0, 2).join(','), 'Work', { uid: true });
      expect(copied && [...copied.uidMap!.keys()]).toEqual(uids.slice(0, 2));
      const moved = await c.messageMove(String(uids[2]), 'Work', { uid: true });
      expect(moved && [...moved.uidMap!.keys()]).toEqual([uids[2]]);
      expect(await c.messageDelete(String(uids[3]), { uid: true })).toBe(true);
      expect((c.mailbox as { exists: number }).exists).toBe(uids.length - 2);
      const work = await c.status('Work', { messages: true, unseen: true });
      expect(work).toMatchObject({ messages: 3, unseen: 3 });
    } finally {
      lock.release();
    }
    await c.logout();
    const s = await open();
    expect(s.list('flow', 'Work').map((m) => m.flags)).toEqual([['\\Flagged', 'Todo'], ['\\Flagged'], ['\\Flagged', 'Todo']]);
    expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    await s.close();
  });

  it("IDLE: another process's delivery, flag change and expunge reach the idling session", async () => {
    const c = client();
    await c.connect();
    const lock = await c.getMailboxLock('INBOX');
    const events: { kind: string; at: number; v: unknown }[] = [];
    c.on('exists', (v) => events.push({ kind: 'exists', at: Date.now(), v }));
    c.on('expunge', (v) => events.push({ kind: 'expunge', at: Date.now(), v }));
    c.on('flags', (v) => events.push({ kind: 'flags', at: Date.now(), v }));
    const idling = c.idle();
    const waitFor = async (kind: string): Promise<number> => {
      for (let i = 0; i < 100 && !events.some((e) => e.kind === kind); i++) await new Promise((r) => setTimeout(r, 50));
      return events.find((e) => e.kind === kind)?.at ?? NaN;
    };
    await new Promise((r) => setTimeout(r, 200));
    const msg = Buffer.from('Subject: while idle\r\n\r\nnew mail\r\n');
    const t0 = Date.now();
    const d = await runCli(['--store', dir, 'ingest', '--user', 'flow'], { input: msg });
    expect(d.code, d.stderr).toBe(0);
    const id = d.stdout.toString().trim();
    expect((await waitFor('exists')) - t0).toBeLessThan(5000);
    expect((await runCli(['--store', dir, 'flags', '--user', 'flow', id, '--add', 'Urgent'])).code).toBe(0);
    await waitFor('flags');
    expect(events.find((e) => e.kind === 'flags')!.v).toMatchObject({ uid: Number(id), flags: new Set(['Urgent']) });
    expect((await runCli(['--store', dir, 'expunge', '--user', 'flow', id])).code).toBe(0);
    await waitFor('expunge');
    expect(events.map((e) => e.kind)).toEqual(['exists', 'flags', 'expunge']);
    lock.release();
    await c.logout();
    await idling.catch(() => undefined);
  });

  it("curl's IMAP: upload (APPEND) and download byte-exact (which marks it \\Seen), a custom UID STORE", async () => {
    const work = tmpDir();
    const file = path.join(work, 'up.eml');
    const up = Buffer.from('From: curl@example.org\r\nSubject: uploaded by curl\r\n\r\nbody\r\n');
    fs.writeFileSync(file, up);
    const url = `imap://127.0.0.1:${server.port}/INBOX`;
    const put = spawnSync('curl', ['-sS', '-u', 'flow:pw', '-T', file, url], { encoding: 'utf8', timeout: 30_000 });
    expect(put.status, put.stderr).toBe(0);
    let s = await open();
    const stored = s.list('flow', 'INBOX').find((m) => m.subject === 'uploaded by curl')!;
    expect((await s.fetchBuffer(stored.id)).equals(up)).toBe(true);
    await s.close();
    const get = spawnSync('curl', ['-sS', '-u', 'flow:pw', `${url};UID=${stored.id}`], { timeout: 30_000 });
    expect(get.status, get.stderr.toString()).toBe(0);
    expect(get.stdout.equals(up)).toBe(true);
    const st = spawnSync('curl', ['-sS', '-u', 'flow:pw', url, '-X', `UID STORE ${stored.id} +FLAGS (\\Flagged Curl)`], { encoding: 'utf8', timeout: 30_000 });
    expect(st.status, st.stderr).toBe(0);
    // curl downloads with BODY[] (no PEEK): the message became \Seen then
    expect(st.stdout).toMatch(/FLAGS \(\\Seen \\Flagged Curl\)/);
    s = await open();
    expect(s.get(stored.id).flags).toEqual(['\\Seen', '\\Flagged', 'Curl']);
    await s.close();
  });

  it('fetchmail fetches every unseen message once, byte-exact, and marks it \\Seen: a second run fetches nothing', async () => {
    const work = tmpDir();
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    const save = path.join(work, 'save.sh');
    fs.writeFileSync(save, `#!/bin/sh\ncat > "${out}/m.$(date +%s%N).$$"\n`, { mode: 0o755 });
    const rc = path.join(work, 'fetchmailrc');
    // bad-header accept: the corpus has malformed headers, which fetchmail otherwise leaves on the server
    fs.writeFileSync(rc, `poll 127.0.0.1 service ${server.port} protocol IMAP auth password bad-header accept user "fetch" password "pw" is "fetch" here keep no rewrite sslproto "" mda "${save}"\n`, { mode: 0o600 });
    const run = () => spawnSync('fetchmail', ['-f', rc, '--pidfile', path.join(work, 'pid'), '--nosyslog'], { encoding: 'utf8', env: { ...process.env, HOME: work }, timeout: 120_000 });
    const r1 = run();
    expect(r1.status, r1.stderr + r1.stdout).toBe(0);
    // fetchmail adds its own Received: field (after Return-Path and Delivered-To; no rewrite keeps addresses as they are): taken off again
    const got = fs.readdirSync(out).map((f) => sha(fs.readFileSync(path.join(out, f), 'latin1').replace(/^Received: from 127\.0\.0\.1[^\n]*\n(\t[^\n]*\n)*/m, '')));
    const want = files.slice(0, 20).map(sha);
    expect(got.length).toBe(20);
    expect(got.sort()).toEqual(want.sort());
    const r2 = run();
    // exit 1: "no mail" (fetchmail's own code)
    expect(r2.status, r2.stderr + r2.stdout).toBe(1);
    expect(fs.readdirSync(out).length).toBe(20);
    const s = await open();
    expect(s.list('fetch').every((m) => m.flags.includes('\\Seen'))).toBe(true);
    await s.close();
  });

  it('mbsync two-way: flags, deletions and new mail on each side meet; a second run has nothing to do', async () => {
    const work = tmpDir();
    const maildir = path.join(work, 'mail');
    fs.mkdirSync(maildir);
    const rc = path.join(work, 'mbsyncrc');
    fs.writeFileSync(
      rc,
      `IMAPAccount far\nHost 127.0.0.1\nPort ${server.port}\nUser sync\nPass pw\nSSLType None\nAuthMechs PLAIN\n\nIMAPStore far-store\nAccount far\n\nMaildirStore near\nPath ${maildir}/\nInbox ${maildir}/INBOX\nSubFolders Verbatim\n\nChannel ch\nFar :far-store:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\nSync All\nSyncState *\n`,
    );
    const run = () => spawnSync('mbsync', ['-c', rc, '-a', '-V'], { encoding: 'utf8', cwd: work, timeout: 120_000 });
    const r1 = run();
    expect(r1.status, r1.stderr + r1.stdout).toBe(0);
    const cur = (): string[] => ['cur', 'new'].flatMap((d) => fs.readdirSync(path.join(maildir, 'INBOX', d)).map((f) => path.join(maildir, 'INBOX', d, f)));
    const body = (f: string): string => sha(fs.readFileSync(f, 'latin1').replace(/^X-TUID: [^\n]*\n/m, ''));
    expect(cur().map(body).sort()).toEqual(files.slice(20, 40).map(sha).sort());

    // the Maildir side: one message read (S), one deleted, one new
    const [seenFile, deadFile] = cur().sort();
    fs.renameSync(seenFile, `${seenFile.replace(/:2,[A-Z]*$/, '')}:2,S`);
    fs.rmSync(deadFile);
    const fresh = Buffer.from('From: near@example.org\nSubject: written on the laptop\n\nnew on the Maildir side\n');
    fs.writeFileSync(path.join(maildir, 'INBOX', 'new', `${Date.now()}.1.laptop`), fresh);
    // the server side: a flag set, a message expunged, a delivery
    let s = await open();
    const ids = s.list('sync', 'INBOX').map((m) => Number(m.id));
    await s.mail.setFlags('sync', [ids[ids.length - 1]], 'add', ['\\Flagged']);
    await s.mail.expunge('sync', [ids[ids.length - 2]]);
    const delivered = Buffer.from('From: far@example.org\nSubject: delivered on the server\n\nnew on the server side\n');
    await s.ingest(delivered, { user: 'sync' });
    await s.close();

    const r2 = run();
    expect(r2.status, r2.stderr + r2.stdout).toBe(0);
    s = await open();
    const far = s.list('sync', 'INBOX');
    // IMAP carries CRLF: mbsync uploads the Maildir's LF message with CRLF (and an X-TUID line), and keeps LF in the Maildir
    const farText = await Promise.all(far.map(async (m) => (await s.fetchBuffer(m.id)).toString('latin1').replace(/^X-TUID: [^\r\n]*\r?\n/m, '')));
    expect(farText).toContain(fresh.toString('latin1').replace(/\n/g, '\r\n'));
    const serverBytes = farText.map((t) => sha(t.replace(/\r\n/g, '\n')));
    const near = cur();
    // the same messages on both sides: 20 - 1 deleted near - 1 expunged far + 1 new on each side
    expect(far.length).toBe(20);
    expect(near.length).toBe(20);
    expect(near.map(body).sort()).toEqual(serverBytes.sort());
    expect(serverBytes).toContain(sha(fresh));
    expect(near.map(body)).toContain(sha(delivered));
    // flags met: \Seen from the Maildir on the server, \Flagged from the server in the Maildir
    expect(far.filter((m) => m.flags.includes('\\Seen')).length).toBeGreaterThanOrEqual(1);
    expect(near.filter((f) => /:2,[A-Z]*F/.test(f)).length).toBe(1);
    expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    const modseq = s.mail.info('sync', 'INBOX')!.highestModseq;
    await s.close();

    const r3 = run();
    expect(r3.status, r3.stderr + r3.stdout).toBe(0);
    expect(cur().length).toBe(20);
    s = await open();
    expect(s.mail.info('sync', 'INBOX')!.highestModseq).toBe(modseq);
    await s.close();
  });

  it('offlineimap3 two-way: a message read and one deleted on the Maildir side, a flag, an expunge and a delivery on the server; then nothing to do', async () => {
    const work = tmpDir();
    const maildir = path.join(work, 'mail');
    fs.mkdirSync(maildir);
    const rc = path.join(work, 'offlineimaprc');
    fs.writeFileSync(
      rc,
      `[general]\naccounts = a\nmetadata = ${work}/meta\n[Account a]\nlocalrepository = l\nremoterepository = r\n[Repository l]\ntype = Maildir\nlocalfolders = ${maildir}\n` +
        `[Repository r]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = ${server.port}\nremoteuser = oi\nremotepass = pw\nssl = no\nstarttls = no\n`,
    );
    const run = () => spawnSync('offlineimap', ['-c', rc, '-o', '-u', 'basic'], { encoding: 'utf8', timeout: 120_000 });
    const r1 = run();
    expect(r1.status, r1.stderr + r1.stdout).toBe(0);
    const inbox = (): string[] => ['cur', 'new'].flatMap((d) => fs.readdirSync(path.join(maildir, 'INBOX', d)).map((f) => path.join(maildir, 'INBOX', d, f)));
    const norm = (b: Buffer | string): string => sha(b.toString('latin1').replace(/\r\n/g, '\n'));
    expect(inbox().map((f) => norm(fs.readFileSync(f))).sort()).toEqual(plain.map(norm).sort());
    const [readFile, deadFile] = inbox().sort();
    fs.renameSync(readFile, path.join(maildir, 'INBOX', 'cur', `${path.basename(readFile).replace(/:2,[A-Z]*$/, '')}:2,S`));
    fs.rmSync(deadFile);
    const fresh = Buffer.from('From: laptop@example.org\nSubject: written offline\n\nfrom the Maildir side\n');
    fs.writeFileSync(path.join(maildir, 'INBOX', 'new', `${Date.now()}_0.1.laptop`), fresh);
    let s = await open();
    const ids = s.list('oi', 'INBOX').map((m) => Number(m.id));
    await s.mail.setFlags('oi', [ids[ids.length - 1]], 'add', ['\\Flagged']);
    await s.mail.expunge('oi', [ids[ids.length - 2]]);
    await s.ingest(Buffer.from('From: server@example.org\nSubject: arrived meanwhile\n\nfrom the server side\n'), { user: 'oi' });
    await s.close();
    const r2 = run();
    expect(r2.status, r2.stderr + r2.stdout).toBe(0);
    s = await open();
    const far = s.list('oi', 'INBOX');
    const farBytes = await Promise.all(far.map(async (m) => s.fetchBuffer(m.id)));
    expect(far.length).toBe(12 - 2 + 2);
    expect(inbox().length).toBe(12);
    expect(inbox().map((f) => norm(fs.readFileSync(f))).sort()).toEqual(farBytes.map(norm).sort());
    // offlineimap uploads with CRLF: what the server stored is exactly that
    expect(farBytes.some((b) => b.equals(Buffer.from(fresh.toString('latin1').replace(/\n/g, '\r\n'), 'latin1')))).toBe(true);
    expect(far.filter((m) => m.flags.includes('\\Seen')).length).toBe(1);
    expect(inbox().filter((f) => /:2,[A-Z]*F/.test(f)).length).toBe(1);
    const modseq = s.mail.info('oi', 'INBOX')!.highestModseq;
    expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    await s.close();
    const r3 = run();
    expect(r3.status, r3.stderr + r3.stdout).toBe(0);
    expect(r3.stdout + r3.stderr).not.toMatch(/Copy message|Deleting|Adding flag|Deleting flag/);
    s = await open();
    expect(s.mail.info('oi', 'INBOX')!.highestModseq).toBe(modseq);
    await s.close();
  });
});

describe('APPEND refused', () => {
  it('over --max-message-bytes: NO [TOOBIG] before a synchronizing literal (the session goes on); a large non-synchronizing one ends the session; nothing is spooled or stored', async () => {
    const dir = tmpDir();
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    await s.close();
    fs.writeFileSync(path.join(dir, 'passwd'), 'u:{PLAIN}pw\n');
    const srv = await startImap(dir, path.join(dir, 'passwd'), ['--max-message-bytes', '1000']);
    try {
      const talk = async (lines: string[], waitFor: RegExp): Promise<string> => {
        const { default: net } = await import('node:net');
        const sock = net.connect(srv.port, '127.0.0.1');
        let buf = '';
        sock.on('data', (d) => (buf += d.toString('latin1')));
        await new Promise((r) => sock.once('connect', r));
        for (const l of lines) {
          sock.write(l);
          await new Promise((r) => setTimeout(r, 100));
        }
        for (let i = 0; i < 50 && !waitFor.test(buf); i++) await new Promise((r) => setTimeout(r, 50));
        sock.destroy();
        return buf;
      };
      const sync = await talk(['a LOGIN u pw\r\n', 'b APPEND INBOX {5000}\r\n', 'c APPEND Nowhere {3}\r\n', 'x\r\n\r\n', 'd NOOP\r\n'], /d OK/);
      expect(sync).toMatch(/b NO \[TOOBIG\] message of 5000 bytes is over the limit of 1000 bytes/);
      expect(sync).not.toMatch(/\+ ready[^\r]*\r\n[^]*b NO/);
      expect(sync).toMatch(/c NO \[TRYCREATE\]/);
      expect(sync).toMatch(/d OK/);
      const early = await talk(['a APPEND INBOX {5}\r\n'], /a BAD/);
      expect(early).toMatch(/a BAD log in first/);
      const flood = await talk(['a LOGIN u pw\r\n', 'b APPEND INBOX {50000000+}\r\n', 'xxxx'], /BYE/);
      expect(flood).toMatch(/\* BYE \[TOOBIG\] message of 50000000 bytes is over the limit of 1000 bytes: a literal this large must be synchronizing/);
      const st = await Store.open(dir, { logger: silentLogger, workers: 0 });
      expect(st.list('u')).toEqual([]);
      await st.close();
      expect(fs.readdirSync(path.join(dir, 'tmp')).filter((f) => f.includes('append'))).toEqual([]);
    } finally {
      await stop(srv.proc);
    }
  });
});
