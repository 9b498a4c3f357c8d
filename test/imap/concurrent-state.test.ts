// Mailbox state under concurrency (issue 23): two IMAP sessions changing flags of the same messages
// at once while Python's LMTP client delivers into the same mailbox through `mailcas lmtp` (another
// process) and one session expunges: no flag change is lost, every delivery arrives, each session's
// view after NOOP is the store's, and reference counts stay exact.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImapFlow } from 'imapflow';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { BIN, ROOT, tmpDir } from '../helpers.js';
import { startImap, stop } from './start-imap.js';

const LMTP_CLIENT = path.join(ROOT, 'test', 'delivery', 'lmtp_client.py');

describe('mailbox state under concurrency', () => {
  const dir = tmpDir();
  const passwd = path.join(tmpDir(), 'passwd');
  let imap: { proc: ChildProcess; port: number };
  let lmtp: ChildProcess;
  const sock = path.join(tmpDir(), 'lmtp.sock');

  beforeAll(async () => {
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    for (let i = 0; i < 30; i++) await s.ingest(Buffer.from(`Subject: m${i}\r\nMessage-ID: <m${i}@t>\r\n\r\nbody ${i}\r\n`), { user: 'c' });
    await s.close();
    fs.writeFileSync(passwd, 'c:{PLAIN}pw\n');
    imap = await startImap(dir, passwd);
    lmtp = spawn(process.execPath, [BIN, '--store', dir, 'lmtp', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    lmtp.stderr!.on('data', (d) => (log += d));
    for (let i = 0; i < 200 && !log.includes('lmtp-listening'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(log).toMatch(/lmtp-listening/);
  });

  afterAll(async () => {
    if (imap) expect(await stop(imap.proc)).toBe(0);
    if (lmtp) expect(await stop(lmtp)).toBe(0);
  });

  it('two sessions STORE on the same messages while LMTP delivers and one expunges: nothing lost, views agree', async () => {
    const session = async (): Promise<ImapFlow> => {
      const c = new ImapFlow({ host: '127.0.0.1', port: imap.port, secure: false, auth: { user: 'c', pass: 'pw' }, logger: false });
      await c.connect();
      await c.mailboxOpen('INBOX');
      return c;
    };
    const [a, b] = await Promise.all([session(), session()]);
    const work = tmpDir();
    const files = Array.from({ length: 12 }, (_, i) => {
      const f = path.join(work, `d${i}.eml`);
      fs.writeFileSync(f, `Subject: delivered ${i}\r\nMessage-ID: <d${i}@t>\r\n\r\nwhile they store\r\n`);
      return f;
    });
    const delivering = new Promise<string>((resolve) => {
      const p = spawn('python3', [LMTP_CLIENT, sock, '0', 'sender@example.org', 'c@example.org', ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', () => resolve(out));
    });
    // each session adds its own keyword to every original message, one STORE at a time; A also deletes and expunges 1:3
    const storing = async (c: ImapFlow, kw: string): Promise<void> => {
      for (let uid = 1; uid <= 30; uid++) await c.messageFlagsAdd(String(uid), [kw], { uid: true });
    };
    await Promise.all([
      storing(a, 'FromA'),
      storing(b, 'FromB'),
      (async () => {
        await a.messageFlagsAdd('1:3', ['\\Deleted'], { uid: true });
        await a.messageDelete('1:3', { uid: true });
      })(),
    ]);
    const lmtpOut = await delivering;
    expect(lmtpOut.trim().split('\n').map((l) => JSON.parse(l).replies?.[0]?.[1])).toEqual(Array(12).fill(250));
    await Promise.all([a.noop(), b.noop()]);
    const s = await Store.open(dir, { logger: silentLogger, workers: 0 });
    const inbox = s.list('c', 'INBOX');
    expect(inbox.length).toBe(30 - 3 + 12);
    expect(inbox.filter((m) => m.subject?.startsWith('delivered')).length).toBe(12);
    // every original message still there carries both sessions' keywords: no STORE lost another's change
    for (const m of inbox.filter((x) => x.subject?.startsWith('m'))) expect(m.flags, m.id).toEqual(expect.arrayContaining(['FromA', 'FromB']));
    // each session's view, after NOOP, is the store's (EXISTS, EXPUNGE and FETCH FLAGS all arrived)
    for (const c of [a, b]) {
      expect((c.mailbox as { exists: number }).exists).toBe(inbox.length);
      const seen = new Map<number, string[]>();
      for await (const m of c.fetch('1:*', { uid: true, flags: true })) seen.set(m.uid, [...m.flags!].sort());
      expect([...seen.keys()]).toEqual(inbox.map((m) => Number(m.id)));
      for (const m of inbox) expect(seen.get(Number(m.id))).toEqual([...m.flags].sort());
    }
    expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    await s.close();
    await Promise.all([a.logout(), b.logout()]);
  });
});
