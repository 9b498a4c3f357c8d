// mailcas deliver, the local delivery agent: exit codes as MTAs read them, and many at once.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, runCli, tmpDir } from '../helpers.js';
import { messageWith } from '../mailgen.js';

const msg = (n = 20_000, subject = 'hello') => messageWith(crypto.randomBytes(n), { subject });

describe('mailcas deliver', () => {
  it('stores stdin exactly and exits 0 with nothing on stdout; the address forms map as in LMTP', async () => {
    const store = tmpDir();
    const m = msg();
    const r = await runCli(['--store', store, 'deliver', '--user', 'alice'], { input: m });
    expect({ code: r.code, out: r.stdout.length, err: r.stderr }).toEqual({ code: 0, out: 0, err: '' });
    const r2 = await runCli(['--store', store, 'deliver', '--user', 'Bob+Lists@Example.org', '--recipient-delimiter', '+'], { input: m });
    expect(r2.code).toBe(0);
    const { Store } = await import('../../src/store.js');
    const s = await Store.open(store);
    expect((await s.fetchBuffer(s.list('alice')[0].id)).equals(m)).toBe(true);
    expect(s.list('bob').map((x) => x.mailbox)).toEqual(['lists']);
    await s.close();
  });

  it('exit codes: 67 unknown user (with a user map), 65 over the size limit or empty, 75 store busy, 74 damaged store; one line each', async () => {
    const store = tmpDir();
    const users = path.join(tmpDir(), 'users');
    fs.writeFileSync(users, '# address user [mailbox]\nalice@example.org alice\nsales@example.org bob Sales\n');
    const known = await runCli(['--store', store, 'deliver', '--users', users, '--user', 'sales@example.org'], { input: msg() });
    expect(known.code).toBe(0);
    const unknown = await runCli(['--store', store, 'deliver', '--users', users, '--user', 'mallory@example.org'], { input: msg() });
    expect({ code: unknown.code, err: unknown.stderr }).toEqual({ code: 67, err: 'mailcas: mallory@example.org: unknown user\n' });
    const big = await runCli(['--store', store, '--max-message-bytes', '1000', 'deliver', '--user', 'a'], { input: msg() });
    expect(big.code).toBe(65);
    expect(big.stderr).toMatch(/^mailcas: message exceeds the size limit of 1000 bytes\n$/);
    const empty = await runCli(['--store', store, 'deliver', '--user', 'a'], { input: Buffer.alloc(0) });
    expect(empty.code).toBe(65);

    const holder = new Database(path.join(store, 'meta.sqlite'));
    holder.exec('BEGIN IMMEDIATE');
    const busy = await runCli(['--store', store, 'deliver', '--user', 'a'], { input: msg(), env: { MAILCAS_BUSY_TIMEOUT_MS: '300' } });
    holder.exec('ROLLBACK');
    holder.close();
    expect(busy.code).toBe(75);
    expect(busy.stderr.trim().split('\n')).toHaveLength(1);

    const damaged = tmpDir();
    fs.writeFileSync(path.join(damaged, 'meta.sqlite'), 'not a database at all, '.repeat(200));
    const d = await runCli(['--store', damaged, 'deliver', '--user', 'a'], { input: msg() });
    expect(d.code).toBe(74);
    expect(d.stderr).toMatch(/is damaged/);
  });

  it('--add-headers prepends Return-Path and Delivered-To in the message\'s own line endings; the rest is stored exactly', async () => {
    const store = tmpDir();
    const lf = Buffer.from('Subject: unix\n\nbody\n');
    expect((await runCli(['--store', store, 'deliver', '--user', 'u', '--from', 's@example.com', '--add-headers'], { input: lf })).code).toBe(0);
    const f = await runCli(['--store', store, 'fetch', '--user', 'u', '1']);
    expect(f.stdout.toString()).toBe('Return-Path: <s@example.com>\nDelivered-To: u\nSubject: unix\n\nbody\n');
  });

  it('many deliver processes and LMTP sessions into one store at once: every message fetchable byte-exact, check clean', async () => {
    const store = tmpDir();
    const sock = path.join(tmpDir(), 'lmtp.sock');
    const server = spawn(process.execPath, [BIN, '--store', store, 'lmtp', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr.on('data', (c) => (log += c));
    for (let i = 0; i < 100 && !log.includes('lmtp-listening'); i++) await new Promise((r) => setTimeout(r, 50));
    const shared = crypto.randomBytes(50_000); // every message carries it: maximal contention on one blob
    const sent = new Map<string, Buffer[]>();
    const add = (user: string, m: Buffer) => sent.set(user, [...(sent.get(user) ?? []), m]);
    const lmtpClients = Array.from({ length: 6 }, (_, c) => {
      const files = Array.from({ length: 8 }, (_, i) => {
        const m = messageWith(i % 2 ? shared : crypto.randomBytes(3000 + i), { subject: `lmtp ${c}-${i}` });
        add(`l${c}`, m);
        const f = path.join(tmpDir(), `${c}-${i}.eml`);
        fs.writeFileSync(f, m);
        return f;
      });
      return new Promise<string>((resolve) => {
        const p = spawn('python3', [path.join(ROOT, 'test', 'delivery', 'lmtp_client.py'), sock, '0', 's@x', `l${c}@example.org`, ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.on('close', () => resolve(out));
      });
    });
    const delivers = Array.from({ length: 6 }, (_, c) =>
      (async () => {
        const codes: number[] = [];
        for (let i = 0; i < 4; i++) {
          const m = messageWith(i % 2 ? shared : crypto.randomBytes(2000 + i), { subject: `lda ${c}-${i}` });
          add(`d${c}`, m);
          codes.push((await runCli(['--store', store, 'deliver', '--user', `d${c}`], { input: m })).code);
        }
        return codes;
      })(),
    );
    const lmtpOut = await Promise.all(lmtpClients);
    const codes = (await Promise.all(delivers)).flat();
    expect(codes.every((c) => c === 0)).toBe(true);
    const replies = lmtpOut.flatMap((o) => o.trim().split('\n').map((l) => JSON.parse(l).replies[0][1]));
    expect(replies).toEqual(Array(48).fill(250));
    server.kill('SIGTERM');
    expect(await new Promise((r) => server.on('close', r))).toBe(0);
    const { Store } = await import('../../src/store.js');
    const s = await Store.open(store);
    for (const [user, msgs] of sent) {
      const got = await Promise.all(s.list(user).map((m) => s.fetchBuffer(m.id)));
      expect(got.map((b) => b.toString('latin1')).sort()).toEqual(msgs.map((b) => b.toString('latin1')).sort());
    }
    const c = await s.check();
    expect(c.consistent).toBe(true);
    const sharedRow = s.db.prepare('SELECT refs FROM blobs WHERE size = ?').get(shared.length) as { refs: number };
    expect(sharedRow.refs).toBe(24 + 12);
    await s.close();
  });
});
