/**
 * Many writers at once on one store: import processes, deliver processes,
 * an LMTP server with Python's smtplib, expunges that remove messages whose
 * content is then ingested again (so gc keeps finding blobs at count 0 that
 * a new message is about to reference), gc --grace 0, tier and check, all
 * looping together for a while. Afterwards: every command exited 0 (a busy
 * database waits; it never reaches a user), check is clean with exact counts,
 * and every acknowledged message that was not expunged fetches byte-exact.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { prng } from './crash-harness.js';

export interface ConcurrencyOptions {
  seed: number;
  seconds: number;
  bin: string;
  store: string;
  pool: string[];
  lmtpClient: string;
  init?: string[];
  tiered?: boolean;
}

export interface ConcurrencyReport {
  seed: number;
  commands: Record<string, number>;
  failures: string[];
  acknowledged: number;
  expunged: number;
  verified: number;
  lost: string[];
  mismatched: string[];
  check: string | null;
}

function cli(bin: string, args: string[], input?: Buffer, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { env: { ...process.env, MAILCAS_NO_PROGRESS: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.stdin.on('error', () => undefined);
    p.stdin.end(input);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function runConcurrency(o: ConcurrencyOptions): Promise<ConcurrencyReport> {
  const rnd = prng(o.seed);
  const rep: ConcurrencyReport = { seed: o.seed, commands: {}, failures: [], acknowledged: 0, expunged: 0, verified: 0, lost: [], mismatched: [], check: null };
  const work = fs.mkdtempSync(path.join(path.dirname(o.store), 'conc-'));
  const init = await cli(o.bin, ['--store', o.store, 'init', ...(o.init ?? [])]);
  if (init.code !== 0) throw new Error(`init: ${init.stderr}`);
  const acked = new Map<string, Buffer>();
  const expunged = new Set<string>();
  let serial = 0;
  // a small set of bases, so the same parts come back again and again
  const bases = o.pool.slice(0, 40).map((f) => fs.readFileSync(f));
  const msg = (): Buffer => {
    const b = bases[Math.floor(rnd() * bases.length)];
    return Buffer.concat([Buffer.from(`X-Conc: ${o.seed}-${++serial}\n`), b]);
  };
  const end = Date.now() + o.seconds * 1000;
  // with a gc whose clock runs hours ahead, an ingest whose lease that gc revoked fails temporarily (75: nothing
  // acknowledged, the MTA or the operator tries again): the protocol working, counted apart, never a failure
  const revoked = (text: string): boolean => !!o.tiered && /leases were reclaimed/.test(text);
  const note = (name: string, r: { code: number | null; stderr: string }): boolean => {
    rep.commands[name] = (rep.commands[name] ?? 0) + 1;
    if (r.code === 75 && revoked(r.stderr)) rep.commands['lease revoked: try again'] = (rep.commands['lease revoked: try again'] ?? 0) + 1;
    else if (r.code !== 0 && !(name === 'check' && r.code === 1)) rep.failures.push(`${name} exited ${r.code}: ${r.stderr.trim().split('\n')[0]}`);
    return r.code === 0;
  };
  const loop = async (name: string, step: () => Promise<void>): Promise<void> => {
    while (Date.now() < end) await step();
    void name;
  };
  const importer = async (): Promise<void> => {
    const files: string[] = [];
    const bytes = new Map<string, Buffer>();
    for (let i = 0; i < 8; i++) {
      const b = msg();
      const f = path.join(work, `c${serial}.eml`);
      fs.writeFileSync(f, b);
      files.push(f);
      bytes.set(f, b);
    }
    const r = await cli(o.bin, ['--store', o.store, 'import', '--user', 'u', '--format', 'eml', '--json', ...files]);
    note('import', r);
    // a line is printed only once its message is committed: every one is acknowledged, whatever the exit code
    for (const l of r.stdout.trim().split('\n')) {
      if (!l) continue;
      const j = JSON.parse(l);
      if (j.id && !j.skipped) acked.set(j.id, bytes.get(j.source)!);
    }
    for (const f of files) fs.rmSync(f, { force: true });
  };
  const deliverer = async (): Promise<void> => {
    const b = msg();
    const r = await cli(o.bin, ['--store', o.store, 'deliver', '--user', 'd'], b);
    note('deliver', r);
  };
  const expunger = async (): Promise<void> => {
    const ids = [...acked.keys()].filter((id) => !expunged.has(id) && rnd() < 0.2).slice(0, 10);
    if (!ids.length) return void (await new Promise((r) => setTimeout(r, 100)));
    const r = await cli(o.bin, ['--store', o.store, 'expunge', '--user', 'u', ...ids]);
    if (note('expunge', r)) for (const id of ids) expunged.add(id);
  };
  const gc = async (): Promise<void> => void note('gc', await cli(o.bin, ['--store', o.store, 'gc', '--grace', '0']));
  const check = async (): Promise<void> => void note('check', await cli(o.bin, ['--store', o.store, 'check', '--json']));
  // tier's cold PUTs answer late now and then (a slow bucket, a paused VM), while gc runs with grace 0 and, in a
  // second loop, with its clock two hours ahead: the lifecycle races of the blob index's invariants
  const tier = async (): Promise<void> => void note('tier', await cli(o.bin, ['--store', o.store, 'tier', '--older-than', '0'], undefined, { MAILCAS_LATE_PUT_MS: '800:0.3' }));
  const skewedGc = async (): Promise<void> => void note('gc (clock ahead)', await cli(o.bin, ['--store', o.store, 'gc'], undefined, { MAILCAS_GC_CLOCK_AHEAD_MS: String(2 * 3600_000) }));
  const compact = async (): Promise<void> => void note('compact', await cli(o.bin, ['--store', o.store, 'compact', '--older-than', '0']));
  const lmtp = async (): Promise<void> => {
    const sock = path.join(work, 'lmtp.sock');
    const server = spawn(process.execPath, [o.bin, '--store', o.store, 'lmtp', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr.on('data', (d) => (log += d));
    for (let i = 0; i < 200 && !log.includes('lmtp-listening'); i++) await new Promise((r) => setTimeout(r, 25));
    while (Date.now() < end) {
      const files: string[] = [];
      for (let i = 0; i < 5; i++) {
        const f = path.join(work, `l${++serial}.eml`);
        fs.writeFileSync(f, msg());
        files.push(f);
      }
      const out = await new Promise<string>((resolve) => {
        const p = spawn('python3', [o.lmtpClient, sock, '0', 's@x', 'l@example.org', ...files], { stdio: ['ignore', 'pipe', 'ignore'] });
        let s = '';
        p.stdout.on('data', (d) => (s += d));
        p.on('close', () => resolve(s));
      });
      rep.commands.lmtp = (rep.commands.lmtp ?? 0) + files.length;
      for (const l of out.trim().split('\n')) {
        if (!l) continue;
        const j = JSON.parse(l);
        for (const [, code, text] of j.replies ?? []) if (code !== 250 && !(code === 451 && revoked(text))) rep.failures.push(`lmtp ${code} ${text}`);
        if (!j.replies) rep.failures.push(`lmtp: ${l}`);
      }
      for (const f of files) fs.rmSync(f, { force: true });
    }
    server.kill('SIGTERM');
    await new Promise((r) => server.once('close', r));
  };
  await Promise.all([loop('import', importer), loop('import', importer), loop('import', importer), loop('deliver', deliverer), loop('deliver', deliverer), loop('expunge', expunger), loop('gc', gc), loop('check', check), loop('compact', compact), lmtp(), ...(o.tiered ? [loop('tier', tier), loop('tier', tier), loop('gc', skewedGc)] : [])]);
  // afterwards
  const chk = await cli(o.bin, ['--store', o.store, 'check', '--json']);
  const j = JSON.parse(chk.stdout || '{}');
  const bad = ['drift', 'missingRows', 'missingBlobs', 'orphans', 'coldOrphans', 'corruptBlobs', 'damagedMessages'].filter((k) => (j[k] ?? []).length);
  if (chk.code !== 0 || bad.length) rep.check = `code ${chk.code}: ${bad.map((k) => `${k} ${JSON.stringify(j[k]).slice(0, 300)}`).join('; ')}`;
  const out = path.join(work, 'export');
  const ex = await cli(o.bin, ['--store', o.store, 'export', '--user', 'u', '--out', out]);
  if (ex.code !== 0) rep.failures.push(`export exited ${ex.code}: ${ex.stderr.trim()}`);
  for (const [id, b] of acked) {
    const f = path.join(out, `${id}.eml`);
    if (expunged.has(id)) {
      if (fs.existsSync(f)) rep.mismatched.push(`${id} was expunged but is still there`);
      continue;
    }
    if (!fs.existsSync(f)) rep.lost.push(id);
    else if (!fs.readFileSync(f).equals(b)) rep.mismatched.push(id);
    else rep.verified++;
  }
  rep.acknowledged = acked.size;
  rep.expunged = expunged.size;
  fs.rmSync(work, { recursive: true, force: true });
  return rep;
}
