// mailcas imap: the read-only IMAP front, spoken to by clients nobody here wrote: Python's imaplib
// (login, AUTHENTICATE PLAIN, LIST, STATUS, EXAMINE, UID SEARCH, BODYSTRUCTURE, sections, partials,
// BINARY) and mbsync from Debian's isync mirroring a user's mailboxes into a Maildir, every message
// byte-identical to the one imported, again after a restart with nothing new (UIDs stable).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { answerItem, parseFetchItems } from '../../src/fetch/fetch-items.js';
import { toWire } from '../../src/fetch/wire.js';
import { ROOT, corpusFiles, tmpDir } from '../helpers.js';
import { startImap, stop } from './start-imap.js';

describe('mailcas imap (IMAP4rev1 front): reads', () => {
  const dir = tmpDir();
  const passwd = path.join(tmpDir(), 'passwd');
  // LF-only messages with a header/body separator (mbsync stores LF and refuses headers with no end)
  const files = corpusFiles()
    .map((f) => ({ f, b: fs.readFileSync(f) }))
    .filter(({ b }) => !b.includes('\r') && b.includes('\n\n'))
    .slice(0, 240);
  const byId = new Map<string, Buffer>();
  let server: { proc: ChildProcess; port: number };

  beforeAll(async () => {
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    for (const [i, { b }] of files.entries()) {
      const mailbox = i % 3 === 0 ? 'Archive' : i % 3 === 1 ? 'INBOX' : 'Lists/dev';
      byId.set((await s.ingest(b, { user: 'u1', mailbox })).id, b);
    }
    await s.ingest(Buffer.from('Subject: not yours\n\nsecret\n'), { user: 'u2' });
    await s.close();
    const hash = spawnSync('openssl', ['passwd', '-6', 'pw-one']).stdout.toString().trim();
    fs.writeFileSync(passwd, `u1:{SHA512-CRYPT}${hash}\nu2:{PLAIN}pw-two\n`);
    server = await startImap(dir, passwd);
  });

  afterAll(async () => {
    if (server) expect(await stop(server.proc)).toBe(0);
  });

  it("Python's imaplib: AUTHENTICATE PLAIN, LIST, STATUS, EXAMINE, UID SEARCH, and every FETCH item equal to the library's answer; STORE refused", async () => {
    const items = ['UID', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY.PEEK[HEADER]', 'BODY.PEEK[1]<0.64>', 'BODY.PEEK[1.MIME]', 'BINARY.SIZE[1]'];
    const r = spawnSync('python3', [path.join(ROOT, 'test', 'imap', 'imap_client.py'), '127.0.0.1', String(server.port), 'u1', 'pw-one', 'INBOX', ...items], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.badLogin).toMatch(/AUTHENTICATIONFAILED/);
    expect(out.auth).toBe('OK');
    expect(out.list).toEqual(['(\\HasNoChildren) "/" "Archive"', '(\\HasNoChildren) "/" "INBOX"', '(\\HasNoChildren) "/" "Lists/dev"']);
    const s = await Store.open(dir, { logger: silentLogger });
    const inbox = s.list('u1', 'INBOX');
    expect(out.status).toBe(`"INBOX" (MESSAGES ${inbox.length} UIDNEXT ${s.nextId()} UIDVALIDITY ${s.uidValidity})`);
    expect(out.exists).toBe(inbox.length);
    expect(out.uids).toEqual(inbox.map((m) => Number(m.id)));
    // what imaplib received, item by item, is the wire form of what the library answers
    let literals = 0;
    for (const [n, m] of inbox.entries()) {
      const access = s.access(m.id, { user: 'u1' });
      const expected: Buffer[] = [Buffer.from(`${n + 1} (`)];
      let answered = true;
      for (const [k, it] of parseFetchItems(`(${items.join(' ')})`).entries()) {
        const sep = k ? ' ' : '';
        if (it.kind === 'meta' && it.name === 'UID') {
          expected.push(Buffer.from(`${sep}UID ${m.id}`));
          continue;
        }
        let a;
        try {
          a = await answerItem(access, it);
        } catch {
          answered = false; // BINARY.SIZE[1] of a multipart: the server says NO, imaplib gets no data
          break;
        }
        if ('value' in a) expected.push(Buffer.from(`${sep}${a.name} `), toWire(a.value));
        else {
          const chunks: Buffer[] = [];
          for await (const c of a.bytes()) chunks.push(c);
          expected.push(Buffer.from(`${sep}${a.name} {${a.size}}\r\n`), ...chunks);
        }
      }
      const got = out.fetched[m.id] as { head: string; literal?: string }[];
      if (!answered) {
        expect(got.some((p) => p.head.includes('FETCH')), `message ${m.id}`).toBe(false);
        continue;
      }
      expected.push(Buffer.from(')'));
      // imaplib splits the response at literals: each head ends with {n}, the bytes follow the line break it took away
      const received = Buffer.concat(got.flatMap((p) => (p.literal === undefined ? [Buffer.from(p.head, 'latin1')] : [Buffer.from(p.head, 'latin1'), Buffer.from('\r\n'), Buffer.from(p.literal, 'base64')])));
      literals += got.filter((p) => p.literal !== undefined).length;
      expect(received.toString('latin1'), `message ${m.id}`).toBe(Buffer.concat(expected).toString('latin1'));
    }
    expect(literals).toBeGreaterThan(inbox.length);
    // 1:* BODY[]: every message exact
    const bulk = Object.values(out.bulk as Record<string, string>).map((b) => Buffer.from(b, 'base64'));
    expect(bulk.length).toBe(inbox.length);
    bulk.forEach((b, i) => expect(b.equals(byId.get(inbox[i].id)!)).toBe(true));
    expect(out.larger.split(' ').filter(Boolean).map(Number)).toEqual(inbox.map((m, i) => (m.size > 2000 ? i + 1 : 0)).filter(Boolean));
    expect(out.store).toMatch(/^NO \[READ-ONLY\]/);
    await s.close();
  });

  it('u2 sees only its own mail; raw protocol edges: literals, a bad tag, AUTHENTICATE with a continuation', async () => {
    const script = [
      'import socket, base64, sys',
      `s = socket.create_connection(("127.0.0.1", ${server.port}))`,
      'f = s.makefile("rb")',
      'def line(): return f.readline().decode("latin1")',
      'out = [line()]',
      's.sendall(b"a1 AUTHENTICATE PLAIN\\r\\n"); out.append(line())',
      's.sendall(base64.b64encode(b"\\0u2\\0pw-two") + b"\\r\\n"); out.append(line())',
      's.sendall(b"a2 LIST \\"\\" {1}\\r\\n"); out.append(line())',
      's.sendall(b"*\\r\\n")',
      'while True:',
      '    l = line(); out.append(l)',
      '    if l.startswith("a2 "): break',
      's.sendall(b"a3 EXAMINE Archive\\r\\n"); out.append(line())',
      's.sendall(b")bad\\r\\n"); out.append(line())',
      's.sendall(b"a4 SELECT INBOX\\r\\n")',
      'while True:',
      '    l = line(); out.append(l)',
      '    if l.startswith("a4 "): break',
      's.sendall(b"a5 FETCH 1 (BODY[])\\r\\n")',
      'while True:',
      '    l = line(); out.append(l)',
      '    if l.startswith("a5 "): break',
      's.sendall(b"a6 FETCH 2 FLAGS\\r\\n"); out.append(line())',
      's.sendall(b"a7 LOGOUT\\r\\n"); out.append(line()); out.append(line())',
      'sys.stdout.write("".join(out))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script], { encoding: 'latin1', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\r\n');
    expect(lines[0]).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 .*AUTH=PLAIN/);
    expect(lines[1]).toBe('+ ');
    expect(lines[2]).toMatch(/^a1 OK/);
    expect(lines[3]).toBe('+ go ahead');
    expect(lines).toContain('* LIST (\\HasNoChildren) "/" "INBOX"');
    expect(lines.filter((l) => l.startsWith('* LIST'))).toEqual(['* LIST (\\HasNoChildren) "/" "INBOX"']); // u2 has no Archive
    expect(lines.find((l) => l.startsWith('a3 '))).toMatch(/^a3 NO \[NONEXISTENT\]/);
    expect(lines).toContain('* BAD missing or malformed tag');
    expect(lines.find((l) => l.startsWith('a4 '))).toMatch(/^a4 OK \[READ-WRITE\]/);
    // a body fetched without PEEK from a mailbox selected read-write is \Seen from then on (RFC 3501 6.4.5)
    expect(r.stdout).toContain('* 1 FETCH (BODY[] {27}\r\nSubject: not yours\n\nsecret\n FLAGS (\\Seen))\r\n');
    expect(lines.find((l) => l.startsWith('a6 '))).toMatch(/^a6 BAD no message 2/);
    expect(lines.find((l) => l.startsWith('* BYE'))).toBeTruthy();
  });

  it('mbsync (isync) mirrors every mailbox into a Maildir, every message byte-identical; after a restart nothing is new', async () => {
    const work = tmpDir();
    const mirror = path.join(work, 'mirror');
    fs.mkdirSync(mirror);
    const rc = path.join(work, 'mbsyncrc');
    const conf = (port: number) =>
      `IMAPAccount far\nHost 127.0.0.1\nPort ${port}\nUser u1\nPass pw-one\nSSLType None\nAuthMechs PLAIN\n\nIMAPStore far-store\nAccount far\n\nMaildirStore near\nPath ${mirror}/\nInbox ${mirror}/INBOX\nSubFolders Verbatim\n\nChannel ch\nFar :far-store:\nNear :near:\nPatterns *\nCreate Near\nSync Pull\nSyncState *\n`;
    fs.writeFileSync(rc, conf(server.port));
    const run = () => spawnSync('mbsync', ['-c', rc, '-a'], { encoding: 'utf8', cwd: work, timeout: 120_000 });
    const r1 = run();
    expect(r1.status, r1.stderr + r1.stdout).toBe(0);
    const mirrored = (): Map<string, string> => {
      const out = new Map<string, string>();
      const walk = (d: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (/\/(cur|new)$/.test(d)) {
            // mbsync adds one X-TUID header line to each message it copies (its own bookkeeping): taken out again
            const b = fs.readFileSync(p).toString('latin1').replace(/^X-TUID: [^\n]*\n/m, '');
            out.set(p, crypto.createHash('sha256').update(Buffer.from(b, 'latin1')).digest('hex'));
          }
        }
      };
      walk(mirror);
      return out;
    };
    const got = mirrored();
    const want = new Map([...byId.values()].map((b) => [crypto.createHash('sha256').update(b).digest('hex'), b]));
    expect(got.size).toBe(byId.size);
    expect([...got.values()].filter((h) => !want.has(h))).toEqual([]);
    expect(new Set(got.values()).size).toBe(new Set(want.keys()).size);
    for (const mb of ['INBOX', 'Archive', 'Lists/dev']) expect(fs.existsSync(path.join(mirror, mb, 'cur')) || fs.existsSync(path.join(mirror, mb, 'new')), mb).toBe(true);
    // restart: same UIDVALIDITY and UIDs, so the mirror is up to date
    expect(await stop(server.proc)).toBe(0);
    server = await startImap(dir, passwd);
    fs.writeFileSync(rc, conf(server.port));
    const r2 = run();
    expect(r2.status, r2.stderr + r2.stdout).toBe(0);
    expect(r2.stderr).not.toMatch(/UIDVALIDITY/);
    expect(mirrored().size).toBe(byId.size);
  });
});
