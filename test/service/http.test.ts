// mailcas serve: the HTTP contract (exact bytes, Range 206, 401/404 and their JSON errors), FETCH items
// as JSON and in IMAP's wire form, sections and BINARY with ranges, listings; spoken to by curl and by
// Node's HTTP client, with the server started as a real process.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { BIN, corpusFiles, tmpDir } from '../helpers.js';
import { messageWith } from '../mailgen.js';

const TOKEN_ALL = 'tok-all-0123456789abcdef';
const TOKEN_U1 = 'tok-u1-0123456789abcdef';

describe('mailcas serve (HTTP)', () => {
  let server: ChildProcess;
  let base = '';
  const dir = tmpDir();
  const msgs: { id: string; user: string; bytes: Buffer }[] = [];
  let big: { id: string; bytes: Buffer; att: Buffer };
  let damaged: { id: string; att: Buffer };

  beforeAll(async () => {
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    for (const f of corpusFiles().slice(0, 60)) {
      const b = fs.readFileSync(f);
      msgs.push({ id: (await s.ingest(b, { user: 'u1', mailbox: 'INBOX' })).id, user: 'u1', bytes: b });
    }
    const other = fs.readFileSync(corpusFiles()[61]);
    msgs.push({ id: (await s.ingest(other, { user: 'u2' })).id, user: 'u2', bytes: other });
    const att = crypto.randomBytes(3 * 1024 * 1024);
    const bytes = messageWith(att, { subject: 'big one' });
    big = { id: (await s.ingest(bytes, { user: 'u1', mailbox: 'Archive' })).id, bytes, att };
    const datt = crypto.randomBytes(100 * 1024);
    damaged = { id: (await s.ingest(messageWith(datt, { subject: 'to be damaged' }), { user: 'u3' })).id, att: datt };
    await s.close();
    const tokens = path.join(tmpDir(), 'tokens');
    fs.writeFileSync(tokens, `# test tokens\n${TOKEN_ALL} *\n${TOKEN_U1} u1\n`);
    server = spawn(process.execPath, [BIN, '--store', dir, 'serve', '--listen', '127.0.0.1:0', '--tokens', tokens], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr!.on('data', (d) => (log += d));
    for (let i = 0; i < 200 && !log.includes('serve-listening'); i++) await new Promise((r) => setTimeout(r, 50));
    const on = /"on":"([^"]+)"/.exec(log)?.[1];
    expect(on, log).toBeTruthy();
    base = `http://${on}`;
  });

  afterAll(async () => {
    if (!server || server.exitCode !== null) return;
    server.kill('SIGTERM');
    const [code] = await new Promise<[number | null]>((r) => server.once('exit', (c) => r([c])));
    expect(code).toBe(0);
  });

  const get = (p: string, token: string | null = TOKEN_U1, headers: Record<string, string> = {}) => fetch(base + p, { headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers } });
  const bytesOf = async (r: Response) => Buffer.from(await r.arrayBuffer());

  it('GET a message: the exact bytes, message/rfc822, the right Content-Length (curl, a client nobody here wrote)', () => {
    for (const m of [msgs[0], msgs[7], big]) {
      const out = path.join(tmpDir(), 'out.eml');
      const r = spawnSync('curl', ['-sS', '-o', out, '-D', '-', '-H', `Authorization: Bearer ${TOKEN_U1}`, `${base}/v1/users/u1/messages/${m.id}`], { encoding: 'latin1' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
      expect(r.stdout).toMatch(/content-type: message\/rfc822/i);
      expect(r.stdout).toContain(`Content-Length: ${m.bytes.length}`);
      expect(fs.readFileSync(out).equals(m.bytes)).toBe(true);
    }
  });

  it('Range: bytes=A-B answers 206 with exactly that slice (also A- and -N); past the end 416', async () => {
    const m = big;
    for (const [h, a, b] of [
      ['bytes=0-0', 0, 1],
      ['bytes=100-1123', 100, 1124],
      ['bytes=2000000-2100000', 2000000, 2100001],
      [`bytes=${m.bytes.length - 10}-`, m.bytes.length - 10, m.bytes.length],
      ['bytes=-25', m.bytes.length - 25, m.bytes.length],
      [`bytes=5-${m.bytes.length + 100}`, 5, m.bytes.length],
    ] as const) {
      const r = await get(`/v1/users/u1/messages/${m.id}`, TOKEN_U1, { Range: h });
      expect(r.status, h).toBe(206);
      expect(r.headers.get('content-range')).toBe(`bytes ${a}-${b - 1}/${m.bytes.length}`);
      const got = await bytesOf(r);
      expect(got.length).toBe(b - a);
      expect(got.equals(m.bytes.subarray(a, b)), h).toBe(true);
    }
    const curl = spawnSync('curl', ['-sS', '-r', '10-19', '-H', `Authorization: Bearer ${TOKEN_U1}`, `${base}/v1/users/u1/messages/${msgs[3].id}`], { encoding: 'latin1' });
    expect(curl.stdout).toBe(msgs[3].bytes.subarray(10, 20).toString('latin1'));
    const r = await get(`/v1/users/u1/messages/${m.id}`, TOKEN_U1, { Range: `bytes=${m.bytes.length}-` });
    expect(r.status).toBe(416);
    expect(r.headers.get('content-range')).toBe(`bytes */${m.bytes.length}`);
    expect((await r.json()).error.code).toBe('range_not_satisfiable');
  });

  it('no token or an unknown one: 401; a token not granted the user, an unknown id, another user\'s id: the same 404; errors are JSON', async () => {
    for (const t of [null, 'nope-not-a-token']) {
      const r = await get(`/v1/users/u1/messages/${msgs[0].id}`, t);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const body = await r.json();
      expect(typeof body.error.code).toBe('string');
      expect(typeof body.error.message).toBe('string');
    }
    const u2msg = msgs.find((m) => m.user === 'u2')!;
    const answers = await Promise.all([
      get(`/v1/users/u2/messages/${u2msg.id}`, TOKEN_U1), // token not granted u2
      get(`/v1/users/u1/messages/999999`, TOKEN_U1), // unknown id
      get(`/v1/users/u1/messages/${u2msg.id}`, TOKEN_U1), // u2's message asked as u1
      get(`/v1/users/u1/messages/${u2msg.id}`, TOKEN_ALL),
      get(`/v1/users/u1/messages/abc`, TOKEN_U1),
    ]);
    const bodies = await Promise.all(answers.map(async (r) => ({ status: r.status, body: await r.text() })));
    for (const b of bodies) {
      expect(b.status).toBe(404);
      expect(b.body).toBe(bodies[0].body); // the same answer whatever the reason
      expect(JSON.parse(b.body).error.code).toBe('not_found');
    }
    // the all-users token reads u2
    const ok = await get(`/v1/users/u2/messages/${u2msg.id}`, TOKEN_ALL);
    expect(ok.status).toBe(200);
    expect((await bytesOf(ok)).equals(u2msg.bytes)).toBe(true);
    const post = await fetch(`${base}/v1/users/u1/messages/${msgs[0].id}`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN_U1}` } });
    expect(post.status).toBe(405);
  });

  it('fetch items as JSON (structure and envelope from the metadata: zero blob reads) and in IMAP wire form', async () => {
    const r = await get(`/v1/users/u1/messages/${big.id}/fetch?items=${encodeURIComponent('(UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BINARY.SIZE[2] BODY.PEEK[HEADER.FIELDS (Subject)])')}`);
    expect(r.status).toBe(200);
    const j = await r.json();
    expect(j.items['RFC822.SIZE']).toBe(big.bytes.length);
    expect(j.items.UID).toBe(Number(big.id));
    expect(j.items.ENVELOPE[1]).toBe('big one');
    expect(j.items.BODYSTRUCTURE.at(-5)).toBe('mixed'); // subtype, then parameters, disposition, language, location
    expect(j.items['BINARY.SIZE[2]']).toBe(big.att.length);
    expect(Buffer.from(j.items['BODY[HEADER.FIELDS (Subject)]'].base64, 'base64').toString()).toMatch(/^Subject: big one\r?\n\r?\n$/);
    expect(j.blobReads).toBe(0);
    expect(j.blobBytes).toBe(0);
    // BINARY[2]<1000.1000>: decoded bytes, read by range (not the 3 MB)
    const b = await get(`/v1/users/u1/messages/${big.id}/fetch?items=${encodeURIComponent('BINARY[2]<1000.1000>')}`);
    const bj = await b.json();
    expect(Buffer.from(bj.items['BINARY[2]<1000>'].base64, 'base64').equals(big.att.subarray(1000, 2000))).toBe(true);
    expect(bj.blobBytes).toBeLessThanOrEqual(1024 * 1024);
    // the wire form: what an IMAP server puts in its FETCH response
    const plain = msgs.find((m) => m.user === 'u1' && !m.bytes.includes('\r') && m.bytes.indexOf('\n\n') > 0)!;
    const w = await get(`/v1/users/u1/messages/${plain.id}/fetch?format=imap&items=${encodeURIComponent('(RFC822.SIZE BODY[HEADER])')}`);
    const text = (await bytesOf(w)).toString('latin1');
    const header = plain.bytes.subarray(0, plain.bytes.indexOf('\n\n') + 2);
    expect(text).toBe(`(RFC822.SIZE ${plain.bytes.length} BODY[HEADER] {${header.length}}\r\n${header.toString('latin1')})`);
    expect((await get(`/v1/users/u1/messages/${big.id}/fetch?items=BOGUS[`)).status).toBe(400);
    // section bytes in JSON are limited: the big attachment is refused there with the way to get it
    const tooBig = await get(`/v1/users/u1/messages/${big.id}/fetch?items=BODY[2]`);
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json()).error.message).toMatch(/section/);
  });

  it('sections and BINARY as bytes, with Range; a part that does not exist is 404', async () => {
    const sec = await get(`/v1/users/u1/messages/${big.id}/section/2`);
    expect(sec.status).toBe(200);
    const encoded = await bytesOf(sec);
    expect(Buffer.from(encoded.toString('latin1'), 'base64').equals(big.att)).toBe(true);
    const bin = await get(`/v1/users/u1/messages/${big.id}/binary/2`, TOKEN_U1, { Range: 'bytes=1000000-1000099' });
    expect(bin.status).toBe(206);
    expect((await bytesOf(bin)).equals(big.att.subarray(1000000, 1000100))).toBe(true);
    const hdr = await get(`/v1/users/u1/messages/${big.id}/section/HEADER`);
    expect((await bytesOf(hdr)).equals(big.bytes.subarray(0, big.bytes.indexOf('\r\n\r\n') + 4))).toBe(true);
    expect((await get(`/v1/users/u1/messages/${big.id}/section/9.1`)).status).toBe(404);
  });

  it('listings: mailboxes with counts, messages page by page', async () => {
    const mb = await (await get('/v1/users/u1/mailboxes')).json();
    expect(mb.mailboxes).toEqual([
      { name: 'Archive', messages: 1, bytes: big.bytes.length, lastId: Number(big.id) },
      { name: 'INBOX', messages: 60, bytes: msgs.filter((m) => m.user === 'u1').reduce((a, m) => a + m.bytes.length, 0), lastId: Number(msgs[59].id) },
    ]);
    const seen: string[] = [];
    let after = '0';
    for (;;) {
      const page = await (await get(`/v1/users/u1/messages?mailbox=INBOX&limit=25&after=${after}`)).json();
      seen.push(...page.messages.map((m: { id: string }) => m.id));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual(msgs.filter((m) => m.user === 'u1').map((m) => m.id));
    expect((await get('/v1/users/u1/messages?limit=0')).status).toBe(400);
    expect((await get('/v1/users/u2/mailboxes')).status).toBe(404);
  });

  it('a message whose blob is damaged on disk: a clean 500 with a JSON error (whole message and section), never wrong bytes', async () => {
    const { hashBuffer } = await import('../../src/util/hash.js');
    const key = hashBuffer(damaged.att).toString('hex');
    const find = (d: string): string | null => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) {
          const f = find(p);
          if (f) return f;
        } else if (e.name === key) return p;
      }
      return null;
    };
    const file = find(path.join(dir, 'blobs'));
    expect(file).toBeTruthy();
    fs.chmodSync(file!, 0o644);
    fs.writeFileSync(file!, crypto.randomBytes(fs.statSync(file!).size));
    for (const p of [`/v1/users/u3/messages/${damaged.id}`, `/v1/users/u3/messages/${damaged.id}/section/2`]) {
      const r = await get(p, TOKEN_ALL);
      expect(r.status, p).toBe(500);
      expect((await r.json()).error.code, p).toBe('damaged');
    }
  });
});
