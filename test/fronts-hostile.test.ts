// Hostile requests at the HTTP and IMAP fronts: unauthenticated access, other users' ids, path
// traversal and SQL metacharacters in users, mailboxes, ids and sections, malformed and oversized
// requests, literal-length abuse, pipelined garbage. Every one gets a clear refusal; the server
// stays up and keeps answering good requests.
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { HttpService } from '../src/service/http-server.js';
import { Tokens } from '../src/service/tokens.js';
import { ImapService } from '../src/imap/imap-server.js';
import { PasswordFile } from '../src/imap/passwd.js';
import { corpusFiles, tmpDir } from './helpers.js';

let store: Store;
let http: HttpService;
let imap: ImapService;
let httpBase = '';
let imapPort = 0;
let ownId = '';
let otherId = '';

beforeAll(async () => {
  store = await Store.init(tmpDir(), { logger: silentLogger, workers: 0 });
  ownId = (await store.ingest(fs.readFileSync(corpusFiles()[0]), { user: 'u1' })).id;
  otherId = (await store.ingest(fs.readFileSync(corpusFiles()[1]), { user: "o'brien; DROP TABLE messages;--" })).id;
  http = new HttpService(store, Tokens.parse('good-token-0123456789 u1\n'), { log: silentLogger });
  httpBase = `http://${await http.listen({ host: '127.0.0.1', port: 0 })}`;
  // (failed logins answered at once here: their delay, and the rest of the hostile shapes, are test/fronts-abuse.test.ts's)
  imap = new ImapService(store, { passwd: PasswordFile.parse('u1:pw\n'), log: silentLogger, authFailureDelayMs: 0 });
  imapPort = Number((await imap.listen({ host: '127.0.0.1', port: 0 })).split(':').pop());
});

afterAll(async () => {
  await http.close(100);
  await imap.close();
  await store.close();
});

/** A raw HTTP request (whatever bytes), the status line back. */
function rawHttp(req: string): Promise<string> {
  return new Promise((resolve) => {
    const u = new URL(httpBase);
    const s = net.connect(Number(u.port), u.hostname, () => s.end(req));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(out.split('\r\n')[0]));
    s.on('error', () => resolve(out.split('\r\n')[0]));
  });
}

describe('HTTP front under hostile requests', () => {
  const get = (p: string, token: string | null = 'good-token-0123456789', headers: Record<string, string> = {}) =>
    fetch(httpBase + p, { headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers } });

  it('traversal, SQL metacharacters and odd ids in paths are the same 404; malformed encodings 400; methods 405', async () => {
    const paths = [
      `/v1/users/..%2F..%2Fetc/messages/${ownId}`,
      `/v1/users/u1%2F..%2Fu2/messages/${ownId}`,
      `/v1/users/${encodeURIComponent("o'brien; DROP TABLE messages;--")}/messages/${otherId}`,
      `/v1/users/u1/messages/${otherId}`,
      `/v1/users/u1/messages/${ownId}%20OR%201=1`,
      `/v1/users/u1/messages/-1`,
      `/v1/users/u1/messages/99999999999999999999`,
      `/v1/users/u1/messages/0x1`,
      `/v1/users/u1/messages/${ownId}/../${otherId}`,
    ];
    const answers = await Promise.all(paths.map(async (p) => ({ p, status: (await get(p)).status })));
    for (const a of answers) expect(a.status, a.p).toBe(404);
    expect((await get('/v1/users/%E0%A4%A/messages/1')).status).toBe(400);
    expect((await get(`/v1/users/u1/messages/${ownId}/section/%E0%A4%A`)).status).toBe(400);
    expect((await get(`/v1/users/u1/messages/${ownId}/section/${encodeURIComponent('1.2.3.4.5.6.7.8.9')}`)).status).toBe(404);
    expect((await get(`/v1/users/u1/messages/${ownId}/section/${encodeURIComponent("HEADER.FIELDS (x') OR 1=1")}`)).status).toBe(400);
    expect((await get(`/v1/users/u1/messages/${ownId}/fetch?items=${encodeURIComponent('(' + 'UID '.repeat(500) + ')')}`)).status).toBe(400);
    expect((await fetch(`${httpBase}/v1/users/u1/messages/${ownId}`, { method: 'DELETE', headers: { Authorization: 'Bearer good-token-0123456789' } })).status).toBe(405);
    // the table is still there and the good request still works
    const ok = await get(`/v1/users/u1/messages/${ownId}`);
    expect(ok.status).toBe(200);
    expect(store.list("o'brien; DROP TABLE messages;--").length).toBe(1);
  });

  it('no token, a wrong scheme, an empty bearer, a token with spaces: 401', async () => {
    for (const h of [{}, { Authorization: 'Basic dTE6cHc=' }, { Authorization: 'Bearer ' }, { Authorization: 'Bearer good-token-0123456789 extra' }, { Authorization: 'bearer nope' }]) {
      const r = await fetch(`${httpBase}/v1/users/u1/messages/${ownId}`, { headers: h as Record<string, string> });
      expect(r.status, JSON.stringify(h)).toBe(401);
    }
  });

  it('malformed and oversized requests are refused; the server keeps answering', async () => {
    expect(await rawHttp('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await rawHttp(`GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    expect(await rawHttp('GET /v1/stats HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect((await get('/v1/stats')).status).toBe(200);
  });
});

/** An IMAP conversation: sends lines (no wait between), returns everything the server said until it closes or goes quiet. */
function imapTalk(lines: (string | Buffer)[], quietMs = 400): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(imapPort, '127.0.0.1');
    let out = '';
    let timer: NodeJS.Timeout;
    const done = (): void => {
      s.destroy();
      resolve(out);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    s.on('data', (d) => {
      out += d;
      arm();
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => undefined);
    s.once('data', () => {
      for (const l of lines) s.write(l);
    });
    arm();
  });
}

describe('IMAP front under hostile input', () => {
  it('unauthenticated commands, bad logins, SQL metacharacters and traversal in names', async () => {
    const out = await imapTalk([
      'a1 SELECT INBOX\r\n',
      'a2 FETCH 1 BODY[]\r\n',
      `a3 LOGIN "u1' OR '1'='1" x\r\n`,
      'a4 LOGIN u1 pw\r\n',
      'a5 EXAMINE "../../../etc/passwd"\r\n',
      `a6 EXAMINE "INBOX' OR 1=1 --"\r\n`,
      'a7 STATUS "%" (MESSAGES)\r\n',
      'a8 SELECT INBOX\r\n',
      `a9 UID FETCH ${otherId} BODY[]\r\n`,
      'b1 FETCH 1:4294967295 UID\r\n',
      'b2 FETCH 1 (BODY[1.2.3.4.5.6.7.8])\r\n',
      'b3 UID SEARCH HEADER "x\') OR 1=1" y\r\n',
      'b4 FETCH 1 UID\r\n',
    ]);
    expect(out).toMatch(/a1 BAD log in first/);
    expect(out).toMatch(/a2 BAD log in first/);
    expect(out).toMatch(/a3 NO \[AUTHENTICATIONFAILED\]/);
    expect(out).toMatch(/a4 OK/);
    expect(out).toMatch(/a5 NO \[NONEXISTENT\]/);
    expect(out).toMatch(/a6 NO \[NONEXISTENT\]/);
    expect(out).toMatch(/a7 NO \[NONEXISTENT\]/);
    expect(out).toMatch(/a8 OK \[READ-WRITE\]/);
    expect(out).toMatch(/a9 OK UID FETCH/); // another user's id is simply not in this mailbox: nothing sent
    expect(out).not.toMatch(new RegExp(`FETCH \\(UID ${otherId}`));
    expect(out).toMatch(/b1 BAD no message 4294967295/);
    expect(out).toMatch(/b2 NO \[NONEXISTENT\]/);
    expect(out).toMatch(/b3 OK/);
    expect(out).toMatch(/\* 1 FETCH \(UID \d+\)\r\nb4 OK/);
  });

  it('a FETCH whose later message fails (BINARY of a multipart part) answers the earlier ones, then NO; the server lives on', async () => {
    await store.ingest(Buffer.from('Subject: leaf\r\n\r\nplain\r\n'), { user: 'u1', mailbox: 'Multi' });
    const nested = 'Subject: nested\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n--o--\r\n';
    for (let i = 0; i < 3; i++) await store.ingest(Buffer.from(nested), { user: 'u1', mailbox: 'Multi' });
    const out = await imapTalk(['a LOGIN u1 pw\r\n', 'b EXAMINE Multi\r\n', 'c FETCH 1:* (BINARY.PEEK[1])\r\n', 'd NOOP\r\n']);
    expect(out).toContain('* 1 FETCH (BINARY[1] ~{7}\r\nplain\r\n)');
    expect(out).toMatch(/c NO \[CANNOT\] part 1 is a multipart/);
    expect(out).toMatch(/d OK/);
  });

  it('answers kept in the server cache are exact: the same header section with different partial ranges, twice', async () => {
    const out = await imapTalk(['a LOGIN u1 pw\r\n', 'b EXAMINE INBOX\r\n', 'c FETCH 1 (BODY.PEEK[HEADER]<0.10>)\r\n', 'd FETCH 1 (BODY.PEEK[HEADER]<0.20>)\r\n', 'e FETCH 1 (BODY.PEEK[HEADER]<0.10> BODY.PEEK[HEADER])\r\n']);
    const header = fs.readFileSync(corpusFiles()[0]).toString('latin1');
    const h = header.slice(0, header.indexOf('\n\n') + 2);
    expect(out).toContain(`* 1 FETCH (BODY[HEADER]<0> {10}\r\n${h.slice(0, 10)})\r\nc OK`);
    expect(out).toContain(`* 1 FETCH (BODY[HEADER]<0> {20}\r\n${h.slice(0, 20)})\r\nd OK`);
    expect(out).toContain(`* 1 FETCH (BODY[HEADER]<0> {10}\r\n${h.slice(0, 10)} BODY[HEADER] {${h.length}}\r\n${h})\r\ne OK`);
  });

  it('literal-length abuse and over-long lines close the session with BYE; garbage floods end in BYE; the server goes on', async () => {
    expect(await imapTalk(['a LOGIN {999999999}\r\n'])).toMatch(/\* BYE literal of 999999999 bytes is over the limit/);
    expect(await imapTalk([Buffer.alloc(200 * 1024, 0x41)])).toMatch(/\* BYE command line longer than/);
    expect(await imapTalk(Array.from({ length: 40 }, (_, i) => `x${i} FROB\r\n`))).toMatch(/\* BYE too many bad commands/);
    expect(await imapTalk(['a LOGIN u1 {2+}\r\npw\r\n', 'b LOGOUT\r\n'])).toMatch(/a OK[\s\S]*\* BYE[\s\S]*b OK LOGOUT/);
  });
});

describe('LMTP front under hostile input', () => {
  it('garbage commands, a pipelined flood, an over-long line and a client that goes quiet: clear replies, and the server goes on', async () => {
    const { LmtpService } = await import('../src/delivery/lmtp-server.js');
    const svc = new LmtpService(store, { maxMessageBytes: store.config.maxMessageBytes, idleTimeoutMs: 800 });
    const port = Number((await svc.listen({ host: '127.0.0.1', port: 0 })).split(':').pop());
    const talk = (chunks: (string | Buffer)[], quietMs = 500): Promise<string> =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let out = '';
        let t: NodeJS.Timeout;
        const arm = (): void => {
          clearTimeout(t);
          t = setTimeout(() => {
            s.destroy();
            resolve(out);
          }, quietMs);
        };
        s.on('data', (d) => {
          out += d;
          arm();
        });
        s.on('close', () => {
          clearTimeout(t);
          resolve(out);
        });
        s.on('error', () => undefined);
        s.once('data', () => chunks.forEach((c) => s.write(c)));
        arm();
      });
    try {
      const garbage = await talk(['LHLO x\r\n', 'FROB\r\n', 'MAIL FROM:<<<>>\r\n', '\0\0\0\r\n']);
      expect(garbage).toMatch(/^220 /);
      expect(garbage.split('\r\n').filter((l) => /^5\d\d /.test(l)).length).toBeGreaterThanOrEqual(2);
      const flood = await talk(['LHLO x\r\n' + 'NOOP\r\n'.repeat(500)], 1500);
      expect(flood.split('\r\n').filter((l) => l.startsWith('250 ')).length).toBeGreaterThan(100);
      const longLine = await talk(['LHLO x\r\n', Buffer.alloc(2 * 1024 * 1024, 0x41), '\r\n'], 1500);
      expect(longLine).toMatch(/^220 /);
      // a client that says nothing is told 421 and disconnected after the idle limit
      const quiet = await talk([], 3000);
      expect(quiet).toMatch(/421 /);
      // and a well-behaved session still delivers
      const ok = await talk(['LHLO x\r\n', 'MAIL FROM:<a@x>\r\n', 'RCPT TO:<u1@example.org>\r\n', 'DATA\r\n', 'Subject: fine\r\n\r\nhello\r\n.\r\n', 'QUIT\r\n'], 1500);
      expect(ok).toMatch(/250 2\.0\.0 <u1@example\.org> stored as message \d+/);
    } finally {
      await svc.close();
    }
  });
});
