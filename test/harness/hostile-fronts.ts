/**
 * Hostile clients at the three fronts (`mailcas imap`, `serve`, `lmtp`, each
 * the real CLI in a process of its own), one shape at a time, while a
 * well-behaved client of another user keeps working against the same
 * server: the bystander's latency is recorded through every shape, the
 * server's RSS is sampled from /proc, and at the end the server is sent
 * SIGTERM in the middle of an attack and must exit. The attacker connects
 * from 127.0.0.2 and the bystander from 127.0.0.1 (two hosts, as far as
 * per-address limits go).
 *
 * Shapes (issue: fronts under hostile clients): a FETCH with 16,000 ranges
 * over a large mailbox, and one of 9,999 (merged); LIST with a pattern of
 * 120 stars; hundreds of connections that send nothing; a flood of
 * unparseable lines before login; a command of chained literals that never
 * ends; FETCH of 64 BODY.PEEK[] per message over 1 MB messages, never read,
 * from three sessions; pipelined failed LOGINs; HTTP: hundreds of half-sent
 * requests; LMTP: a SIZE over the limit, and thousands of unknown RCPTs.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';

export interface HostileOptions {
  bin: string;
  dir: string;
  /** How long each shape runs (ms). */
  shapeMs: number;
  /** Messages in the attacker's large mailbox (the sequence-set shape). */
  mailboxSize: number;
  log?: (s: string) => void;
}

export interface ShapeResult {
  front: string;
  shape: string;
  /** What the attacker was told (the first telling line). */
  answer: string;
  /** Bystander requests answered during the shape, their median, p99 and max (ms). */
  bystander: { n: number; p50: number; p99: number; max: number; failed: number };
  /** The server's peak RSS during the shape (MB). */
  rssMB: number;
  alive: boolean;
}

export interface HostileReport {
  shapes: ShapeResult[];
  /** Seconds from SIGTERM (sent mid-attack) to exit, per front; null: did not exit within 10 s. */
  sigtermSeconds: Record<string, number | null>;
  /** Failed-login answer times (ms) for a user that exists and one that does not. */
  loginFailureMs: { known: number; unknown: number };
  passwdWarning: string;
}

const ATTACKER = '127.0.0.2';

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** A line-oriented client: sends, and waits for a line matching a pattern (resolves with the text read up to it). */
export class Client {
  readonly socket: net.Socket;
  private buf = '';
  private waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  closed = false;
  ready: Promise<void>;
  constructor(port: number, from = '127.0.0.1') {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
    this.socket.setNoDelay(true);
    this.ready = new Promise((r, j) => {
      this.socket.once('connect', () => r());
      this.socket.once('error', j);
    });
    this.socket.on('data', (d) => {
      this.buf += d.toString('latin1');
      if (this.buf.length > 1 << 20) this.buf = this.buf.slice(-65536);
      this.check();
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.resolve(this.buf);
    });
  }
  private check(): void {
    for (const w of [...this.waiters]) {
      const m = w.re.exec(this.buf);
      if (m) {
        const upto = this.buf.slice(0, m.index + m[0].length);
        this.buf = this.buf.slice(m.index + m[0].length);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(upto);
      }
    }
  }
  wait(re: RegExp, ms = 30_000): Promise<string> {
    if (this.closed) return Promise.resolve(this.buf);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(`(timeout waiting for ${re})`), ms);
      this.waiters.push({ re, resolve: (s) => (clearTimeout(t), resolve(s)) });
      this.check();
    });
  }
  send(s: string | Buffer): boolean {
    return this.socket.write(s);
  }
  async cmd(tag: string, line: string, ms?: number): Promise<string> {
    this.send(`${tag} ${line}\r\n`);
    return this.wait(new RegExp(`^${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`, 'm'), ms);
  }
  close(): void {
    this.socket.destroy();
  }
}

/** Starts a CLI server; resolves with its process and port once it logs its address. */
export async function start(bin: string, args: string[]): Promise<{ p: ChildProcess; port: number; stderr: () => string }> {
  const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MAILCAS_NO_PROGRESS: '1' } });
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  for (let i = 0; i < 400; i++) {
    const m = /"on":"[^"]*:(\d+)"/.exec(err);
    if (m) return { p, port: Number(m[1]), stderr: () => err };
    if (p.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  p.kill('SIGKILL');
  throw new Error(`server did not start: ${err}`);
}

function rssMB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs `attack` while `probe` runs in a loop (timed) and the server's RSS is sampled. */
async function underAttack(front: string, shape: string, server: ChildProcess, probe: () => Promise<boolean>, attack: (stop: () => boolean) => Promise<string>, ms: number): Promise<ShapeResult> {
  const lat: number[] = [];
  let failed = 0;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMB(server.pid!))), 50);
  const end = Date.now() + ms;
  const stop = () => Date.now() > end;
  const bystander = (async () => {
    while (!stop()) {
      const t0 = performance.now();
      const ok = await probe().catch(() => false);
      lat.push(performance.now() - t0);
      if (!ok) failed++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const answer = await attack(stop);
  await bystander;
  clearInterval(sampler);
  return {
    front,
    shape,
    answer: answer.replace(/\s+/g, ' ').trim().slice(0, 400),
    bystander: { n: lat.length, p50: Math.round(quantile(lat, 0.5) * 10) / 10, p99: Math.round(quantile(lat, 0.99) * 10) / 10, max: Math.round(Math.max(...lat, 0)), failed },
    rssMB: Math.round(peak),
    alive: server.exitCode === null,
  };
}

async function sigterm(p: ChildProcess): Promise<number | null> {
  const t0 = Date.now();
  p.kill('SIGTERM');
  const exited = await Promise.race([new Promise<boolean>((r) => p.once('exit', () => r(true))), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
  if (!exited) {
    p.kill('SIGKILL');
    return null;
  }
  return (Date.now() - t0) / 1000;
}

function message(i: number, bodyBytes = 200): Buffer {
  return Buffer.from(`From: a${i}@example.org\r\nTo: b@example.org\r\nSubject: message ${i}\r\nMessage-ID: <m${i}@example.org>\r\n\r\n${'x'.repeat(bodyBytes)}\r\n`);
}

/** A store with a bystander (few messages), an attacker with a large mailbox, and one of 1 MB messages. */
async function seed(o: HostileOptions, store: string): Promise<void> {
  const { Store } = await import('../../src/store.js');
  const { silentLogger } = await import('../../src/util/logger.js');
  const s = await Store.open(store, { logger: silentLogger, workers: 0 });
  try {
    for (let i = 0; i < 5; i++) await s.ingest(message(i), { user: 'victim' });
    await Promise.all(Array.from({ length: o.mailboxSize }, (_, i) => s.ingest(message(1000 + i), { user: 'attacker' })));
    for (let i = 0; i < 20; i++) await s.ingest(Buffer.concat([message(50_000 + i, 0), crypto.randomBytes(1_000_000)]), { user: 'attacker', mailbox: 'big' });
  } finally {
    await s.close();
  }
}

export async function runHostileFronts(o: HostileOptions): Promise<HostileReport> {
  const log = o.log ?? (() => undefined);
  const store = path.join(o.dir, 'store');
  await seed(o, store);
  const passwd = path.join(o.dir, 'passwd');
  fs.writeFileSync(passwd, 'victim:victim-pw\nattacker:attacker-pw\nfast:{PLAIN}fast-pw\nempty:\n');
  const tokens = path.join(o.dir, 'tokens');
  fs.writeFileSync(tokens, 'victim-token-0123456789 victim\nattacker-token-0123456789 attacker\n');
  const rep: HostileReport = { shapes: [], sigtermSeconds: {}, loginFailureMs: { known: 0, unknown: 0 }, passwdWarning: '' };

  // ---- IMAP
  const imap = await start(o.bin, ['--store', store, 'imap', '--listen', '127.0.0.1:0', '--passwd', passwd]);
  rep.passwdWarning = /mailcas: [^\n]*empty password[^\n]*/.exec(imap.stderr())?.[0] ?? '';
  const by = new Client(imap.port);
  await by.ready;
  await by.wait(/\* OK[^\n]*\n/);
  await by.cmd('b0', 'LOGIN victim victim-pw');
  await by.cmd('b1', 'SELECT INBOX');
  let n = 0;
  const imapProbe = async (): Promise<boolean> => {
    if (by.closed) return false;
    const r = await by.cmd(`p${++n}`, 'UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])', 10_000);
    return /^p\d+ OK/m.test(r);
  };
  const attacker = async (login = true): Promise<Client> => {
    const c = new Client(imap.port, ATTACKER);
    await c.ready;
    await c.wait(/\* OK[^\n]*\n/);
    if (login) await c.cmd('a0', 'LOGIN attacker attacker-pw');
    return c;
  };
  const shape = async (name: string, attack: (stop: () => boolean) => Promise<string>) => {
    // (the last shape's connections are cut off a second after their BYE: their slots are free again first)
    await new Promise((r) => setTimeout(r, 1500));
    log(`imap: ${name}`);
    rep.shapes.push(await underAttack('imap', name, imap.p, imapProbe, attack, o.shapeMs));
  };

  await shape('FETCH with 16,000 ranges (over the cap) and 9,999 (merged) on a large mailbox', async (stop) => {
    const c = await attacker();
    await c.cmd('a1', 'SELECT INBOX');
    let first = '';
    for (let i = 0; !stop() && !c.closed; i++) {
      const r1 = await c.cmd(`f${i}`, `FETCH ${Array(16_000).fill('1:*').join(',')} (FLAGS)`);
      first ||= r1.split('\r\n').find((l) => /^f\d+ /.test(l)) ?? r1;
      await c.cmd(`u${i}`, `UID FETCH ${Array(9_999).fill('1:*').join(',')} (UID)`);
    }
    c.close();
    return first;
  });
  await shape('LIST with a pattern of 120 stars', async (stop) => {
    const c = await attacker();
    let first = '';
    for (let i = 0; !stop() && !c.closed; i++) {
      const r = await c.cmd(`l${i}`, `LIST "" "${'*'.repeat(120)}Z"`);
      first ||= r;
    }
    c.close();
    return first;
  });
  await shape('300 connections that send nothing (a second server with a login timeout of 2 s)', async (stop) => {
    const quick = await start(o.bin, ['--store', store, 'imap', '--listen', '127.0.0.1:0', '--passwd', passwd, '--login-timeout', '2']);
    const cs = Array.from({ length: 300 }, () => new Client(quick.port, ATTACKER));
    while (!stop()) await new Promise((r) => setTimeout(r, 100));
    // after the timeout every slot is free again: a new connection from the same address gets in
    await new Promise((r) => setTimeout(r, 3500));
    const again = new Client(quick.port, ATTACKER);
    await again.ready;
    const r = await again.cmd('x', 'NOOP');
    again.close();
    const byed = cs.filter((c) => c.closed).length;
    for (const c of cs) c.close();
    quick.p.kill('SIGKILL');
    return `${byed} of 300 closed by the server; a new connection after the timeout: ${r.split('\r\n').find((l) => l.startsWith('x ')) ?? r}`;
  });
  await shape('16 MiB of unparseable lines before login, again and again', async (stop) => {
    let first = '';
    const flood = Buffer.alloc(16 * 1024 * 1024, 'x\r\n');
    while (!stop()) {
      const c = new Client(imap.port, ATTACKER);
      await c.ready.catch(() => undefined);
      c.send(flood);
      first ||= await c.wait(/\* BYE[^\n]*\n/, 10_000);
      c.close();
    }
    return first.split('\r\n').find((l) => l.startsWith('* BYE')) ?? first.slice(-200);
  });
  await shape('a LOGIN of chained literals that never ends', async (stop) => {
    let first = '';
    while (!stop()) {
      const c = await attacker(false);
      c.send('a LOGIN {65536+}\r\n');
      const chunk = Buffer.concat([Buffer.alloc(65536, 'y'), Buffer.from(' {65536+}\r\n')]);
      for (let i = 0; i < 200 && !c.closed; i++) if (!c.send(chunk)) await new Promise((r) => c.socket.once('drain', r).once('close', r));
      first ||= await c.wait(/\* BYE[^\n]*\n/, 5000);
      c.close();
    }
    return first.split('\r\n').find((l) => l.startsWith('* BYE')) ?? first.slice(-200);
  });
  await shape('FETCH 1:20 of 64 BODY.PEEK[] each over 1 MB messages, never read, three sessions', async (stop) => {
    const cs = await Promise.all([attacker(), attacker(), attacker()]);
    for (const c of cs) {
      await c.cmd('s', 'SELECT big');
      c.socket.pause(); // reads nothing from here on
      c.send(`f FETCH 1:20 (${Array(64).fill('BODY.PEEK[]').join(' ')})\r\n`);
    }
    while (!stop()) await new Promise((r) => setTimeout(r, 100));
    for (const c of cs) c.close();
    return 'three sessions, nothing read';
  });
  await shape('300 pipelined failed LOGINs on one connection', async (stop) => {
    let first = '';
    while (!stop()) {
      const c = await attacker(false);
      c.send(Array.from({ length: 300 }, (_, i) => `l${i} LOGIN victim wrong${i}\r\n`).join(''));
      first ||= await c.wait(/\* BYE[^\n]*\n/, 20_000);
      c.close();
    }
    return first.replace(/\r\n/g, ' | ');
  });
  {
    // failed logins take the same time whether the user exists (with a cheap hash) or not
    const c = await attacker(false);
    let t0 = performance.now();
    await c.cmd('k', 'LOGIN fast wrong');
    rep.loginFailureMs.known = Math.round(performance.now() - t0);
    t0 = performance.now();
    await c.cmd('u', 'LOGIN nosuchuser wrong');
    rep.loginFailureMs.unknown = Math.round(performance.now() - t0);
    const e = await c.cmd('e', 'LOGIN empty ""');
    c.close();
    if (!/^e NO/m.test(e)) rep.passwdWarning += ` (LOGIN with the empty password: ${e.trim()})`;
  }
  {
    // SIGTERM in the middle of a flood
    const c = new Client(imap.port, ATTACKER);
    await c.ready;
    c.send(Buffer.alloc(32 * 1024 * 1024, 'x\r\n'));
    by.close();
    rep.sigtermSeconds.imap = await sigterm(imap.p);
    c.close();
  }

  // ---- HTTP
  const serve = await start(o.bin, ['--store', store, 'serve', '--listen', '127.0.0.1:0', '--tokens', tokens]);
  const httpProbe = async (): Promise<boolean> => {
    const r = await fetch(`http://127.0.0.1:${serve.port}/v1/users/victim/messages/1`, { headers: { Authorization: 'Bearer victim-token-0123456789' } });
    await r.arrayBuffer();
    return r.status === 200;
  };
  log('http: half-sent requests');
  rep.shapes.push(
    await underAttack(
      'http',
      '1,000 half-sent requests from one address',
      serve.p,
      httpProbe,
      async (stop) => {
        const cs = Array.from({ length: 1000 }, () => new Client(serve.port, ATTACKER));
        await Promise.all(cs.map((c) => c.ready.then(() => c.send('GET /v1/users/attacker/messages/1 HTTP/1.1\r\nHost: x\r\n'), () => undefined)));
        while (!stop()) await new Promise((r) => setTimeout(r, 100));
        const refused = cs.filter((c) => c.closed).length;
        for (const c of cs) c.close();
        return `${refused} of 1,000 closed by the server`;
      },
      o.shapeMs,
    ),
  );
  {
    const cs = Array.from({ length: 50 }, () => new Client(serve.port, ATTACKER));
    for (const c of cs) void c.ready.then(() => c.send('GET / HTTP/1.1\r\n'), () => undefined);
    rep.sigtermSeconds.serve = await sigterm(serve.p);
    for (const c of cs) c.close();
  }

  // ---- LMTP
  const users = path.join(o.dir, 'users');
  fs.writeFileSync(users, 'victim@example.org victim\n');
  const lmtp = await start(o.bin, ['--store', store, '--max-message-bytes', '100000', 'lmtp', '--listen', '127.0.0.1:0', '--users', users]);
  const good = new Client(lmtp.port);
  await good.ready;
  await good.wait(/^220[^\n]*\n/m);
  good.send('LHLO bystander\r\n');
  await good.wait(/^250 [^\n]*\n/m);
  let k = 0;
  const lmtpProbe = async (): Promise<boolean> => {
    good.send(`MAIL FROM:<s@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n`);
    await good.wait(/^354[^\n]*\n/m, 10_000);
    good.send(`Subject: probe ${++k}\r\n\r\nhello\r\n.\r\n`);
    const r = await good.wait(/^(250|4\d\d|5\d\d) [^\n]*\n/m, 10_000);
    return /250 /.test(r);
  };
  log('lmtp: size and recipient probing');
  rep.shapes.push(
    await underAttack(
      'lmtp',
      'SIZE over the limit, then 3,000 unknown RCPTs per session',
      lmtp.p,
      lmtpProbe,
      async (stop) => {
        let first = '';
        while (!stop()) {
          const c = new Client(lmtp.port, ATTACKER);
          await c.ready;
          await c.wait(/^220[^\n]*\n/m);
          c.send('LHLO attacker\r\nMAIL FROM:<x@example.org> SIZE=200000\r\n');
          const size = await c.wait(/^5\d\d [^\n]*\n/m, 5000);
          c.send('MAIL FROM:<x@example.org>\r\n');
          await c.wait(/^250 [^\n]*\n/m);
          c.send(Array.from({ length: 3000 }, (_, i) => `RCPT TO:<nobody${i}@example.org>\r\n`).join(''));
          const closed = await c.wait(/^421 [^\n]*\n/m, 10_000);
          first ||= `${size.split('\r\n').find((l) => /^5\d\d /.test(l))} | ${closed.split('\r\n').find((l) => l.startsWith('421'))} after ${(closed.match(/^550 /gm) ?? []).length} refusals`;
          c.close();
        }
        return first;
      },
      o.shapeMs,
    ),
  );
  good.close();
  rep.sigtermSeconds.lmtp = await sigterm(lmtp.p);
  return rep;
}
