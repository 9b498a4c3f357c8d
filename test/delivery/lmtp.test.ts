// LMTP with real clients nobody on the team wrote: swaks and Python's smtplib.LMTP.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { FsBackend } from '../../src/backend/fs-backend.js';
import { FaultBackend } from '../../src/backend/fault-backend.js';
import { LmtpService, type LmtpOptions } from '../../src/delivery/lmtp-server.js';
import { mapRecipient } from '../../src/delivery/recipients.js';
import { silentLogger } from '../../src/util/logger.js';
import { BIN, ROOT, runCli, tmpDir } from '../helpers.js';
import { messageWith } from '../mailgen.js';

const CLIENT = path.join(ROOT, 'test', 'delivery', 'lmtp_client.py');
const haveSwaks = spawnSync('swaks', ['--version']).status === 0;

interface Tx {
  file: string;
  mail: [number, string];
  rcpt?: [string, number, string][];
  data?: [number, string];
  replies?: [string, number, string][];
}

function python(hostOrSocket: string, port: number, from: string, rcpts: string[], files: string[]): Promise<Tx[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [CLIENT, hostOrSocket, String(port), from, rcpts.join(','), ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('close', (code) => (code === 0 ? resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))) : reject(new Error(`python client exited ${code}: ${err}`))));
  });
}

function run(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function writeMsg(m: Buffer): string {
  const f = path.join(tmpDir(), `${crypto.randomBytes(4).toString('hex')}.eml`);
  fs.writeFileSync(f, m);
  return f;
}

/** A message that ends with CRLF (what an LMTP client sends and mailcas stores exactly). */
const crlfMessage = (size: number, subject = 'hello'): Buffer => messageWith(crypto.randomBytes(size), { subject });

const services: LmtpService[] = [];
const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

async function serve(opts: Partial<LmtpOptions> = {}, storeOpts: Parameters<typeof Store.open>[1] = {}): Promise<{ store: Store; port: number; dir: string }> {
  const dir = tmpDir();
  const store = await Store.open(dir, { logger: silentLogger, ...storeOpts });
  stores.push(store);
  const svc = new LmtpService(store, { maxMessageBytes: store.config.maxMessageBytes, ...opts });
  services.push(svc);
  const on = await svc.listen({ host: '127.0.0.1', port: 0 });
  return { store, port: Number(on.split(':').pop()), dir };
}

describe('recipient mapping', () => {
  it('local part lower-cased by default; whole address on request; +detail as mailbox; a user map names who exists', () => {
    expect(mapRecipient('U1@Example.org')).toEqual({ user: 'u1', mailbox: 'INBOX' });
    expect(mapRecipient('u1@example.org', { userFormat: 'address' })).toEqual({ user: 'u1@example.org', mailbox: 'INBOX' });
    expect(mapRecipient('u1+lists@example.org', { delimiter: '+' })).toEqual({ user: 'u1', mailbox: 'lists' });
    expect(mapRecipient('u1+lists@example.org', { delimiter: '+', userFormat: 'address' })).toEqual({ user: 'u1@example.org', mailbox: 'lists' });
    const users = new Map([
      ['alice@example.org', { user: 'alice' }],
      ['sales@example.org', { user: 'bob', mailbox: 'Sales' }],
    ]);
    expect(mapRecipient('Alice@example.org', { users })).toEqual({ user: 'alice', mailbox: 'INBOX' });
    expect(mapRecipient('alice+x@example.org', { users, delimiter: '+' })).toEqual({ user: 'alice', mailbox: 'x' });
    expect(mapRecipient('sales@example.org', { users })).toEqual({ user: 'bob', mailbox: 'Sales' });
    expect(mapRecipient('mallory@example.org', { users })).toBeNull();
  });
});

describe('LMTP with real clients', () => {
  it.runIf(haveSwaks)('swaks --protocol LMTP: one reply per recipient; the message stored once for all, byte-exact for each', async () => {
    const { store, port } = await serve();
    const msg = crlfMessage(60_000);
    const file = writeMsg(msg);
    // async: the server answers from this process's event loop
    const r = await run('swaks', ['--protocol', 'LMTP', '--server', `127.0.0.1:${port}`, '--from', 's@example.com', '--to', 'u1@example.org,u2@example.org,u3@example.org', '--data', file, '--suppress-data']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const replies = r.stdout.split('\n').filter((l) => /^<-\s+250 2\.0\.0/.test(l));
    expect(replies).toHaveLength(3);
    for (const u of ['u1', 'u2', 'u3']) {
      const [m] = store.list(u);
      // swaks ends the data with an extra CRLF before the dot: what the client sent is what is stored
      expect((await store.fetchBuffer(m.id)).equals(Buffer.concat([msg, Buffer.from('\r\n')]))).toBe(true);
    }
    expect((store.db.prepare('SELECT count(*) AS n, sum(refs) AS refs FROM blobs').get() as { n: number; refs: number })).toEqual({ n: 1, refs: 3 });
  });

  it("Python's smtplib.LMTP: 50 recipients, one spool/split/verify, 50 records; an unknown recipient refused at RCPT (550)", async () => {
    const users = new Map(Array.from({ length: 50 }, (_, i) => [`u${i}@example.org`, { user: `u${i}` }]));
    const { store, dir } = await serve({ rules: { users } }, {});
    void dir;
    const port = Number((services[0].server.server.address() as { port: number }).port);
    const msg = crlfMessage(80_000);
    const [tx] = await python('127.0.0.1', port, 's@example.com', [...users.keys(), 'nobody@example.org'], [writeMsg(msg)]);
    expect(tx.rcpt!.filter((r) => r[1] === 250)).toHaveLength(50);
    expect(tx.rcpt!.find((r) => r[0] === 'nobody@example.org')).toEqual(['nobody@example.org', 550, expect.stringMatching(/^5\.1\.1 <nobody@example\.org>: no such user here/)]);
    expect(tx.replies!.map((r) => r[1])).toEqual(Array(50).fill(250));
    const rows = store.db.prepare('SELECT count(*) AS n, count(DISTINCT hash) AS h FROM messages').get();
    expect(rows).toEqual({ n: 50, h: 1 });
    expect((store.db.prepare('SELECT count(*) AS n, sum(refs) AS refs FROM blobs').get() as { n: number; refs: number })).toEqual({ n: 1, refs: 50 });
    for (const u of ['u0', 'u49']) expect((await store.fetchBuffer(store.list(u)[0].id)).equals(msg)).toBe(true);
  });

  it('limits are answered with the right code and name the limit: size (552), recipients (452), line length and header size (552), MIME depth (552)', async () => {
    const { store, port } = await serve({ maxRecipients: 2, limits: { maxLineBytes: 200, maxHeaderBytes: 400 } }, { maxMessageBytes: 50_000, maxDepth: 3 });
    const big = writeMsg(crlfMessage(60_000));
    const [tooBig] = await python('127.0.0.1', port, 's@example.com', ['a@example.org'], [big]);
    // SIZE declared: refused at MAIL FROM
    expect(tooBig.mail[0]).toBe(552);
    const [many] = await python('127.0.0.1', port, 's@example.com', ['a@x', 'b@x', 'c@x'], [writeMsg(Buffer.from('Subject: x\r\n\r\ny\r\n'))]);
    expect(many.rcpt!.map((r) => r[1])).toEqual([250, 250, 452]);
    expect(many.rcpt![2][2]).toMatch(/4\.5\.3 too many recipients \(the limit is 2/);
    expect(many.replies!.map((r) => r[1])).toEqual([250, 250]);
    const long = Buffer.from(`Subject: x\r\n\r\n${'a'.repeat(300)}\r\n`);
    const [l] = await python('127.0.0.1', port, 's@example.com', ['a@x', 'b@x'], [writeMsg(long)]);
    expect(l.replies!.map((r) => [r[1], r[2]])).toEqual(Array(2).fill([552, expect.stringMatching(/5\.3\.4 a line is longer than 200 bytes \(the limit is 200\)/)]));
    const header = Buffer.from(`${Array.from({ length: 20 }, (_, i) => `X-H${i}: value value value\r\n`).join('')}\r\nbody\r\n`);
    const [h] = await python('127.0.0.1', port, 's@example.com', ['a@x'], [writeMsg(header)]);
    expect(h.replies![0][1]).toBe(552);
    expect(h.replies![0][2]).toMatch(/the header is larger than 400 bytes/);
    let deep = 'body\r\n';
    for (let i = 0; i < 6; i++) deep = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${deep}--b${i}--\r\n`;
    const [d] = await python('127.0.0.1', port, 's@example.com', ['a@x'], [writeMsg(Buffer.from(`Subject: deep\r\n${deep}`))]);
    expect(d.replies![0][1]).toBe(552);
    expect(d.replies![0][2]).toMatch(/nested deeper than 3 levels \(the limit is 3\)/);
    // the session goes on after each refusal, and nothing refused was stored
    const [ok] = await python('127.0.0.1', port, 's@example.com', ['a@x'], [writeMsg(Buffer.from('Subject: fine\r\n\r\nfine\r\n'))]);
    expect(ok.replies![0][1]).toBe(250);
    expect(store.list('a').map((m) => m.subject)).toEqual(['x', 'fine']);
  });

  it('a failing backend answers 451 for every recipient and stores nothing; the same session then succeeds once it is back', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), { failRate: 1 });
    const { store, port } = await serve({}, { backend: fault });
    const f = writeMsg(crlfMessage(30_000));
    const [tx] = await python('127.0.0.1', port, 's@example.com', ['a@example.org', 'b@example.org'], [f]);
    expect(tx.replies!.map((r) => r[1])).toEqual([451, 451]);
    expect(tx.replies![0][2]).toMatch(/^4\.3\.0 temporary storage failure/);
    expect(store.list('a')).toEqual([]);
    fault.hooks = {};
    const [again] = await python('127.0.0.1', port, 's@example.com', ['a@example.org', 'b@example.org'], [f]);
    expect(again.replies!.map((r) => r[1])).toEqual([250, 250]);
    expect((await store.check()).consistent).toBe(true);
  });

  it('per-recipient results: recipients in two dedup domains, one of whose blob writes fail, get 250 and 451 in one transaction', async () => {
    const dir = tmpDir();
    let failKey: string | null = null;
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), {
      beforePut: (key) => {
        failKey ??= key; // the first domain's blob goes in; the second domain's (another key) fails
        if (key !== failKey) throw Object.assign(new Error('disk of the second tenant fails'), {});
      },
    });
    const { store, port } = await serve({ rules: { userFormat: 'address' } }, { backend: fault, dedupScope: 'tenant' });
    const msg = crlfMessage(30_000);
    const [tx] = await python('127.0.0.1', port, 's@example.com', ['a@one.example', 'b@one.example', 'c@two.example'], [writeMsg(msg)]);
    expect(tx.replies!.map((r) => r[1])).toEqual([250, 250, 451]);
    expect((await store.fetchBuffer(store.list('a@one.example')[0].id)).equals(msg)).toBe(true);
    expect(store.list('c@two.example')).toEqual([]);
  });

  it('a 10 MB message is split in a worker thread while small deliveries on other sessions go on', async () => {
    const { store, port } = await serve({}, { offloadAbove: 256 * 1024 });
    const big = writeMsg(messageWith(crypto.randomBytes(10 * 1024 * 1024), { subject: 'big' }));
    const bigTx = python('127.0.0.1', port, 's@x', ['big@example.org'], [big]);
    const small = Array.from({ length: 10 }, (_, i) => writeMsg(Buffer.from(`Subject: small ${i}\r\n\r\nsmall ${i}\r\n`)));
    const smallTx = await python('127.0.0.1', port, 's@x', ['small@example.org'], small);
    expect(smallTx.map((t) => t.replies![0][1])).toEqual(Array(10).fill(250));
    expect((await bigTx)[0].replies![0][1]).toBe(250);
    expect(store.list('small')).toHaveLength(10);
    expect((await store.fetchBuffer(store.list('big')[0].id)).equals(fs.readFileSync(big))).toBe(true);
  });

  it('mailcas lmtp over a Unix socket; SIGTERM lets a delivery in flight finish (250), then exits 0', async () => {
    const store = tmpDir();
    const sock = path.join(tmpDir(), 'lmtp.sock');
    const p = spawn(process.execPath, [BIN, '--store', store, 'lmtp', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MAILCAS_NO_PROGRESS: '1' } });
    // listened for from the start: the server may exit before the client's reply has been read here
    const exited = new Promise((r) => p.on('close', r));
    let log = '';
    p.stderr.on('data', (c) => (log += c));
    for (let i = 0; i < 100 && !log.includes('lmtp-listening'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(log).toMatch(/lmtp-listening/);
    const big = writeMsg(messageWith(crypto.randomBytes(20 * 1024 * 1024), { subject: 'in flight' }));
    const tx = python(sock, 0, 's@x', ['u@example.org'], [big]);
    // DATA under way: the 20 MB message is being spooled to a temp file in the store
    const spooling = (): boolean => fs.existsSync(path.join(store, 'tmp')) && fs.readdirSync(path.join(store, 'tmp')).length > 0;
    for (let i = 0; i < 1000 && !spooling(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(spooling()).toBe(true);
    p.kill('SIGTERM');
    const [res] = await tx;
    expect(res.replies![0][1]).toBe(250);
    expect(await exited).toBe(0);
    expect(log).toMatch(/lmtp-stopped/);
    const f = await runCli(['--store', store, 'fetch', '--user', 'u', res.replies![0][2].match(/message (\d+)/)![1]]);
    expect(f.stdout.equals(fs.readFileSync(big))).toBe(true);
  });
});
