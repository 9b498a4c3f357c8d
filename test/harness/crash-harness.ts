/**
 * The crash-injection harness: real `mailcas` processes (import, deliver, an
 * LMTP server with Python's smtplib as client, expunge, gc, tier, flush,
 * check) run on one store and are SIGKILLed, at random moments or at a named
 * crash point (MAILCAS_CRASH_AT, src/util/crash-points.ts), over and over.
 * After every kill the store must open and pass check (an ingest that died
 * before committing may leave uncommitted objects; nothing else), and every
 * message whose ingest was acknowledged (id printed, exit 0, 250 sent) must
 * fetch byte-exact. A seed makes a run replay. Used by npm test (a few
 * kills) and npm run soak (thousands).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';

export interface CrashHarnessOptions {
  seed: number;
  kills: number;
  /** CLI entry (bin/mailcas.js) and the store directory (created). */
  bin: string;
  store: string;
  /** Message files to draw from. */
  pool: string[];
  /** Extra arguments for `init` (e.g. --s3 ... or --tiered ...): none for a plain filesystem store. */
  init?: string[];
  tiered?: boolean;
  /** Where Python's LMTP client is. */
  lmtpClient: string;
  log?: (line: string) => void;
  /** Stop early after this long (ms). */
  deadlineMs?: number;
}

export interface CrashHarnessReport {
  seed: number;
  operations: Record<string, number>;
  kills: number;
  killsAt: Record<string, number>;
  acknowledged: number;
  expunged: number;
  verified: number;
  lost: string[];
  mismatched: string[];
  checkFailures: string[];
  drift: number;
}

const POINTS = ['blob-written', 'before-commit', 'after-commit', 'gc-deleted', 'pack-written', 'tier-switched', 'compact-written'];

/** A small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `mailcas` (bin) with args; SIGKILLed after killAfterMs when given. */
export function run(bin: string, args: string[], o: { env?: Record<string, string>; input?: Buffer; killAfterMs?: number; onLine?: (l: string) => void } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { env: { ...process.env, MAILCAS_NO_PROGRESS: '1', ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d;
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        o.onLine?.(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    p.stdin.on('error', () => undefined);
    if (o.input) p.stdin.end(o.input);
    else p.stdin.end();
    const t = o.killAfterMs !== undefined ? setTimeout(() => p.kill('SIGKILL'), o.killAfterMs) : null;
    p.on('close', (code, signal) => {
      if (t) clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export async function runCrashHarness(o: CrashHarnessOptions): Promise<CrashHarnessReport> {
  const rnd = prng(o.seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const log = o.log ?? (() => undefined);
  const rep: CrashHarnessReport = { seed: o.seed, operations: {}, kills: 0, killsAt: {}, acknowledged: 0, expunged: 0, verified: 0, lost: [], mismatched: [], checkFailures: [], drift: 0 };
  const work = fs.mkdtempSync(path.join(path.dirname(o.store), 'harness-'));
  /** id -> the exact bytes acknowledged */
  const acked = new Map<string, Buffer>();
  /** expunges that were killed: the message may or may not be there; if it is, it must be exact */
  const uncertain = new Map<string, Buffer>();
  let serial = 0;
  /** A message from the pool made unique (deliveries are found again by their Message-ID). */
  const unique = (): { bytes: Buffer; mid: string } => {
    const base = fs.readFileSync(pick(o.pool));
    const mid = `<harness-${o.seed}-${++serial}@mailcas.test>`;
    const eol = base.includes('\r\n') ? '\r\n' : '\n';
    return { bytes: Buffer.concat([Buffer.from(`Message-ID: ${mid}${eol}X-Harness: ${serial}${eol}`), base]), mid };
  };
  const init = await run(o.bin, ['--store', o.store, 'init', ...(o.init ?? [])]);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  const mk = await run(o.bin, ['--store', o.store, 'mailbox', 'create', '--user', 'u', 'Copies']);
  if (mk.code !== 0) throw new Error(`mailbox create failed: ${mk.stderr}`);
  const deadline = o.deadlineMs ? Date.now() + o.deadlineMs : Infinity;
  const count = (op: string): void => void (rep.operations[op] = (rep.operations[op] ?? 0) + 1);

  while (rep.kills < o.kills && Date.now() < deadline) {
    const ops = ['import', 'import', 'deliver', 'lmtp', 'expunge', 'gc', 'check', 'compact', 'copy', 'move', 'flags', ...(o.tiered ? ['tier', 'flush', 'tier-beside-gc'] : [])];
    const op = pick(ops);
    count(op);
    // how it ends: a named crash point (hit the n-th time), a random moment, or not at all
    const mode = rnd();
    const point = pick(POINTS.filter((p) => (o.tiered ? true : p !== 'pack-written' && p !== 'tier-switched')));
    const env: Record<string, string> = mode < 0.45 ? { MAILCAS_CRASH_AT: `${point}:${1 + Math.floor(rnd() * 6)}` } : {};
    const killAfterMs = mode >= 0.45 && mode < 0.85 ? Math.floor(rnd() * 1500) : undefined;
    let r: Run | null = null;
    if (op === 'import') {
      const files: string[] = [];
      const n = 5 + Math.floor(rnd() * 40);
      const bytes = new Map<string, Buffer>();
      for (let i = 0; i < n; i++) {
        const { bytes: b } = unique();
        const f = path.join(work, `m${serial}.eml`);
        fs.writeFileSync(f, b);
        files.push(f);
        bytes.set(f, b);
      }
      r = await run(o.bin, ['--store', o.store, 'import', '--user', 'u', '--format', 'eml', '--json', ...files], {
        env,
        killAfterMs,
        onLine: (l) => {
          const j = JSON.parse(l);
          if (j.id && !j.skipped) acked.set(j.id, bytes.get(j.source)!);
        },
      });
      for (const f of files) fs.rmSync(f, { force: true });
    } else if (op === 'deliver') {
      const { bytes, mid } = unique();
      r = await run(o.bin, ['--store', o.store, 'deliver', '--user', 'u'], { env, killAfterMs, input: bytes });
      if (r.code === 0) {
        // exit 0 is the acknowledgement: the message is there, found by its Message-ID
        const id = await idByMessageId(o.bin, o.store, mid);
        if (!id) rep.lost.push(`deliver ${mid}: exit 0 but not stored`);
        else acked.set(id, bytes);
      }
    } else if (op === 'lmtp') {
      r = await lmtpRound(o, work, env, killAfterMs, unique, acked);
    } else if (op === 'expunge') {
      const ids = [...acked.keys()].filter(() => rnd() < 0.15).slice(0, 20);
      if (ids.length) {
        r = await run(o.bin, ['--store', o.store, 'expunge', '--user', 'u', ...ids], { env, killAfterMs });
        for (const id of ids) {
          const b = acked.get(id)!;
          acked.delete(id);
          if (r.code === 0) rep.expunged++;
          else uncertain.set(id, b);
        }
      }
    } else if (op === 'copy' || op === 'move') {
      // new rows referencing the same blobs; a move also expunges the source (one transaction: either or both, never neither)
      const ids = [...acked.keys()].filter(() => rnd() < 0.15).slice(0, 20);
      if (ids.length) {
        const got = new Map<string, string>();
        r = await run(o.bin, ['--store', o.store, op, '--user', 'u', '--to', 'Copies', '--json', ...ids], {
          env,
          killAfterMs,
          onLine: (l) => {
            const j = JSON.parse(l);
            if (j.id && j.newId) got.set(j.id, j.newId);
          },
        });
        for (const id of ids) {
          const b = acked.get(id)!;
          if (r.code === 0) acked.set(got.get(id)!, b);
          if (op === 'move') {
            acked.delete(id);
            if (r.code !== 0) uncertain.set(id, b);
          }
        }
      }
    } else if (op === 'flags') {
      const ids = [...acked.keys()].filter(() => rnd() < 0.2).slice(0, 30);
      if (ids.length) r = await run(o.bin, ['--store', o.store, 'flags', '--user', 'u', ...ids, rnd() < 0.5 ? '--add' : '--remove', '\\Seen', 'Harness'], { env, killAfterMs });
    } else if (op === 'gc') {
      r = await run(o.bin, ['--store', o.store, 'gc', '--grace', '0'], { env, killAfterMs });
    } else if (op === 'tier') {
      r = await run(o.bin, ['--store', o.store, 'tier', '--older-than', '0'], { env, killAfterMs });
    } else if (op === 'tier-beside-gc') {
      // tier (its cold PUTs answering late) and gc --grace 0 (its clock now and then hours ahead) at once, either killed
      const late = { MAILCAS_LATE_PUT_MS: `${200 + Math.floor(rnd() * 1500)}:0.5` };
      const skew: Record<string, string> = rnd() < 0.5 ? { MAILCAS_GC_CLOCK_AHEAD_MS: String(2 * 3600_000) } : {};
      const killTier = rnd() < 0.5;
      const [t, g] = await Promise.all([
        run(o.bin, ['--store', o.store, 'tier', '--older-than', '0'], { env: { ...late, ...(killTier ? env : {}) }, killAfterMs: killTier ? killAfterMs : undefined }),
        run(o.bin, ['--store', o.store, 'gc', '--grace', '0'], { env: { ...skew, ...(killTier ? {} : env) }, killAfterMs: killTier ? undefined : killAfterMs }),
      ]);
      r = killTier ? { ...t, code: t.signal ? t.code : g.code === 0 ? t.code : g.code, stderr: t.stderr + g.stderr } : { ...g, code: g.signal ? g.code : t.code === 0 ? g.code : t.code, stderr: g.stderr + t.stderr };
    } else if (op === 'flush') {
      r = await run(o.bin, ['--store', o.store, 'flush'], { env, killAfterMs });
    } else if (op === 'check') {
      r = await run(o.bin, ['--store', o.store, 'check', '--json'], { env, killAfterMs });
    } else if (op === 'compact') {
      r = await run(o.bin, ['--store', o.store, 'compact', '--older-than', '0', ...(rnd() < 0.3 ? ['--vacuum'] : [])], { env, killAfterMs });
    }
    if (!r) continue;
    const killed = r.signal === 'SIGKILL';
    if (killed) {
      rep.kills++;
      const at = env.MAILCAS_CRASH_AT ? `${op}@${env.MAILCAS_CRASH_AT.split(':')[0]}` : `${op}@random`;
      rep.killsAt[at] = (rep.killsAt[at] ?? 0) + 1;
    } else if (r.code !== 0 && !(op === 'check' && r.code === 1)) {
      // a command that was not killed must not fail (75 is a temporary failure: allowed, nothing acknowledged)
      if (r.code !== 75) rep.checkFailures.push(`${op} exited ${r.code}: ${r.stderr.trim().split('\n')[0]}`);
    }
    // after every kill (and every fifth other step): the store opens and check passes
    const steps = Object.values(rep.operations).reduce((a, b) => a + b, 0);
    const chk = killed || steps % 5 === 0 ? await checkStore(o.bin, o.store) : null;
    if (chk) {
      rep.checkFailures.push(`after ${op}${killed ? ' (killed)' : ''} [seed ${o.seed}, kill ${rep.kills}]: ${chk}`);
      log(`check failed: ${chk}`);
    }
    if (rep.kills % 10 === 0 && killed) log(`kills ${rep.kills}/${o.kills}, acknowledged ${acked.size}`);
  }
  // at the end: gc reclaims what crashes left once the dead ingests' leases have expired (its clock moved past
  // them: leases are how gc knows an ingest may still be running), the store is clean, every acknowledged message exact
  const { Store } = await import('../../src/store.js');
  const st = await Store.open(o.store, { logger: { info() {}, warn() {} } });
  try {
    await st.gc({ graceSeconds: 0, now: () => Date.now() + 2 * 3600_000 });
  } catch (e) {
    rep.checkFailures.push(`final gc failed: ${(e as Error).message}`);
  } finally {
    await st.close();
  }
  const final = await run(o.bin, ['--store', o.store, 'check', '--json']);
  const fj = JSON.parse(final.stdout || '{}');
  rep.drift = (fj.drift ?? []).length;
  if (final.code !== 0 || (fj.uncommitted ?? []).length || (fj.orphans ?? []).length || (fj.coldOrphans ?? []).length || (fj.staleHotCopies ?? []).length || (fj.staleColdCopies ?? []).length)
    rep.checkFailures.push(`final check: code ${final.code}, ${JSON.stringify({ drift: fj.drift, missing: fj.missingBlobs, orphans: fj.orphans, coldOrphans: fj.coldOrphans, uncommitted: fj.uncommitted, staleHotCopies: fj.staleHotCopies, staleColdCopies: fj.staleColdCopies })}`);
  const out = path.join(work, 'export');
  const ex = await run(o.bin, ['--store', o.store, 'export', '--user', 'u', '--out', out]);
  if (ex.code !== 0) rep.checkFailures.push(`export exited ${ex.code}: ${ex.stderr.trim()}`);
  for (const [id, b] of acked) {
    const f = path.join(out, `${id}.eml`);
    if (!fs.existsSync(f)) rep.lost.push(id);
    else if (!fs.readFileSync(f).equals(b)) {
      const got = fs.readFileSync(f);
      let k = 0;
      while (k < got.length && got[k] === b[k]) k++;
      rep.mismatched.push(`${id} (${got.length} bytes, ${b.length} acknowledged, first difference at ${k}: ${JSON.stringify(got.subarray(k, k + 40).toString('latin1'))} vs ${JSON.stringify(b.subarray(k, k + 40).toString('latin1'))})`);
    } else rep.verified++;
  }
  for (const [id, b] of uncertain) {
    const f = path.join(out, `${id}.eml`);
    if (fs.existsSync(f) && !fs.readFileSync(f).equals(b)) rep.mismatched.push(`${id} (an expunge of it was killed; it is there but not as acknowledged)`);
  }
  rep.acknowledged = acked.size + rep.expunged;
  fs.rmSync(work, { recursive: true, force: true });
  return rep;
}

/** null when check is clean (uncommitted objects of crashed ingests, and copies of blobs in the other tier, allowed: gc reclaims them); else what is wrong. */
async function checkStore(bin: string, store: string): Promise<string | null> {
  const r = await run(bin, ['--store', store, 'check', '--json']);
  let j: Record<string, unknown[]>;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    return `check exited ${r.code} without a report: ${r.stderr.trim()}`;
  }
  const bad = ['drift', 'missingRows', 'missingBlobs', 'orphans', 'coldOrphans', 'corruptMessages', 'corruptBlobs', 'damagedMessages'].filter((k) => (j[k] ?? []).length);
  if (r.code !== 0 || bad.length) return `code ${r.code}: ${bad.map((k) => `${k} ${JSON.stringify(j[k]).slice(0, 200)}`).join('; ')}`;
  return null;
}

async function idByMessageId(bin: string, store: string, mid: string): Promise<string | null> {
  const r = await run(bin, ['--store', store, 'list', '--user', 'u', '--json']);
  for (const l of r.stdout.split('\n')) {
    if (!l) continue;
    const j = JSON.parse(l);
    if (j.messageId === mid) return String(j.id);
  }
  return null;
}

/** An LMTP server process and Python's smtplib sending a few messages; 250 replies name the stored ids. */
async function lmtpRound(o: CrashHarnessOptions, work: string, env: Record<string, string>, killAfterMs: number | undefined, unique: () => { bytes: Buffer; mid: string }, acked: Map<string, Buffer>): Promise<Run> {
  const sock = path.join(work, `lmtp-${crypto.randomBytes(4).toString('hex')}.sock`);
  const server = spawn(process.execPath, [o.bin, '--store', o.store, 'lmtp', '--socket', sock], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d) => (log += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => server.on('close', (code, signal) => r({ code, signal })));
  for (let i = 0; i < 200 && !log.includes('lmtp-listening') && server.exitCode === null && server.signalCode === null; i++) await new Promise((r) => setTimeout(r, 25));
  const files: string[] = [];
  const bytes = new Map<string, Buffer>();
  for (let i = 0; i < 6; i++) {
    const { bytes: b } = unique();
    const f = path.join(work, `l${crypto.randomBytes(4).toString('hex')}.eml`);
    fs.writeFileSync(f, b);
    files.push(f);
    bytes.set(f, b);
  }
  const killer = killAfterMs !== undefined ? setTimeout(() => server.kill('SIGKILL'), killAfterMs) : null;
  const client = await new Promise<string>((resolve) => {
    const p = spawn('python3', [o.lmtpClient, sock, '0', 's@x', 'u@example.org', ...files], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('close', () => resolve(out));
  });
  for (const l of client.split('\n')) {
    if (!l) continue;
    const j = JSON.parse(l);
    for (const [, code, msg] of j.replies ?? []) {
      const m = /stored as message (\d+)/.exec(msg);
      // SMTP carries CRLF lines: a message whose last line does not end in CRLF (no line break, or a bare LF) arrives
      // with the CRLF the client ends it with (smtplib adds it), and that CRLF is part of the message
      const sent = bytes.get(j.file)!;
      if (code === 250 && m) acked.set(m[1], sent.subarray(-2).toString('latin1') === '\r\n' ? sent : Buffer.concat([sent, Buffer.from('\r\n')]));
    }
  }
  if (killer) clearTimeout(killer);
  if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
  const end = await exited;
  for (const f of files) fs.rmSync(f, { force: true });
  return { code: end.code, signal: end.signal, stdout: client, stderr: log };
}
