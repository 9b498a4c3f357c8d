/**
 * bench:flags: mailbox state over IMAP, mailcas against Dovecot on a Maildir,
 * in the same run: STOREs one at a time on one connection (each a round
 * trip: +FLAGS and -FLAGS in turn over the mailbox), three rounds, and the
 * bytes the server process writes for one COPY of a message with a 20 MB
 * attachment (/proc/PID/io write_bytes: database, WAL and blob files), and
 * how long an IDLEing session waits to hear of a message another process
 * committed (the store's own ingest, in this process, timed from its commit).
 *
 *   npx tsx bench/flags.ts [--stores N] [--rounds R]     (PROF=DIR: a CPU profile of the server in DIR)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { generatedDataset } from './datasets.js';
import { startDovecotImap } from './dovecot.js';
import { spawnDaemon, waitForListening } from './daemon.js';
import { ImapClient } from './imap-client.js';

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'bin', 'mailcas.js');
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const STORES = arg('--stores', 3000);
const ROUNDS = arg('--rounds', 3);
const MESSAGES = 200;

/** STOREs per second, one at a time: +FLAGS then -FLAGS (\Flagged) over the mailbox's UIDs in turn. */
async function storeRate(c: ImapClient, uids: number[]): Promise<number> {
  for (let i = 0; i < 200; i++) await c.run(`UID STORE ${uids[i % uids.length]} ${i % 2 ? '-' : '+'}FLAGS.SILENT (\\Flagged)`); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < STORES; i++) await c.run(`UID STORE ${uids[i % uids.length]} ${Math.floor(i / uids.length) % 2 ? '-' : '+'}FLAGS (\\Flagged)`);
  return STORES / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** An IDLEing session on INBOX; messages committed by a Store in this process (another process to the server): ms to each EXISTS. */
async function idleLatency(port: number, storeDir: string): Promise<number[]> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((res) => sock.once('connect', res));
  let buf = '';
  let wake: (() => void) | null = null;
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    wake?.();
  });
  const until = async (re: RegExp): Promise<void> => {
    while (!re.test(buf)) await new Promise<void>((r) => (wake = r));
    buf = '';
  };
  await until(/\* OK/);
  sock.write('a LOGIN u1 bench\r\n');
  await until(/a OK/);
  sock.write('b SELECT INBOX\r\n');
  await until(/b OK/);
  sock.write('c IDLE\r\n');
  await until(/\+ /);
  const s = await Store.open(storeDir, { logger: silentLogger, workers: 0 });
  const out: number[] = [];
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 400));
    await s.ingest(Buffer.from(`Subject: idle ${i}\r\n\r\nx\r\n`), { user: 'u1' });
    const t0 = performance.now();
    await until(/EXISTS/);
    out.push(performance.now() - t0);
  }
  await s.close();
  sock.write('DONE\r\n');
  await until(/c OK/);
  sock.end();
  return out;
}

function writeBytes(pid: number): number {
  return Number(/write_bytes: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const ds = generatedDataset('mixed', { seed: 5, users: 1, messages: MESSAGES, profile: 'mixed' });
  const files = ds.users.flatMap((u) => u.files).slice(0, MESSAGES);
  const work = fs.mkdtempSync('/tmp/mailcas-bench-flags-');
  fs.chmodSync(work, 0o755);
  const storeDir = path.join(work, 'store');
  const s = await Store.init(storeDir, { logger: silentLogger });
  const uids: number[] = [];
  for (const f of files) uids.push(Number((await s.ingest(fs.readFileSync(f), { user: 'u1' })).id));
  const big = Buffer.concat([Buffer.from('Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n'), Buffer.from(crypto.randomBytes(20 * 1024 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n')), Buffer.from('\r\n--b--\r\n')]);
  const bigId = (await s.ingest(big, { user: 'u1', mailbox: 'Big' })).id;
  await s.mail.create('u1', 'Copies');
  await s.close();
  const passwd = path.join(work, 'passwd');
  fs.writeFileSync(passwd, 'u1:{PLAIN}bench\n');

  // Dovecot on a Maildir holding the same messages
  const d = path.join(work, 'dovecot');
  for (const sub of ['base', 'state', 'md/cur', 'md/new', 'md/tmp']) fs.mkdirSync(path.join(d, sub), { recursive: true });
  files.forEach((f, i) => fs.copyFileSync(f, path.join(d, 'md', 'cur', `${String(i + 1).padStart(6, '0')}.bench:2,S`)));
  spawnSync('chown', ['-R', 'nobody:nogroup', path.join(d, 'md')]);
  const conf = path.join(d, 'dovecot.conf');
  fs.writeFileSync(
    conf,
    `base_dir = ${d}/base\nstate_dir = ${d}/state\nlog_path = ${d}/dovecot.log\nssl = no\nmail_location = maildir:${d}/md\nfirst_valid_uid = 1\nfirst_valid_gid = 1\nmail_uid = nobody\nmail_gid = nogroup\n` +
      `default_internal_user = root\ndefault_login_user = root\npassdb {\n  driver = static\n  args = nopassword=y\n}\nuserdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=${d}/home/%n\n}\n`,
  );
  const dovecot = fs.existsSync('/usr/lib/dovecot/imap') && process.getuid?.() === 0;
  if (!dovecot) console.log('Dovecot comparison skipped: it needs dovecot-imapd and root');

  const rows: { round: number; mailcas: number; dovecot: number | null }[] = [];
  let copyBytes = NaN;
  let idleMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const proc = spawnDaemon(process.execPath, [...(process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : []), BIN, '--store', storeDir, 'imap', '--listen', '127.0.0.1:0', '--passwd', passwd], { stdio: ['ignore', 'ignore', 'pipe'] });
    const on = await waitForListening(proc, 'imap-listening');
    const sock = net.connect(Number(on.split(':').pop()), '127.0.0.1');
    await new Promise((res) => sock.once('connect', res));
    sock.setNoDelay(true);
    const mc = new ImapClient(sock, sock);
    await mc.greeting();
    await mc.run('LOGIN u1 bench');
    await mc.run('SELECT INBOX');
    const mailcas = await storeRate(mc, uids);
    if (r === 0) {
      await mc.run('SELECT Big');
      const before = writeBytes(proc.pid!);
      await mc.run(`UID COPY ${bigId} Copies`);
      copyBytes = writeBytes(proc.pid!) - before;
    }
    if (r === 0) idleMs = await idleLatency(Number(on.split(':').pop()), storeDir);
    sock.end('z LOGOUT\r\n');
    proc.kill('SIGTERM');
    await new Promise((res) => proc.once('exit', res));
    let dov: number | null = null;
    if (dovecot) {
      const { sock: ds, stop } = await startDovecotImap(d, conf);
      try {
        const dc = new ImapClient(ds, ds);
        await dc.greeting();
        await dc.run('LOGIN u1 bench');
        await dc.run('SELECT INBOX');
        dov = await storeRate(dc, Array.from({ length: files.length }, (_, i) => i + 1));
        ds.end('z LOGOUT\r\n');
      } finally {
        stop();
      }
    }
    rows.push({ round: r + 1, mailcas, dovecot: dov });
    console.log(`round ${r + 1}: mailcas ${mailcas.toFixed(0)} STORE/s, Dovecot Maildir ${dov === null ? '-' : dov.toFixed(0)} STORE/s${dov ? `, ratio ${(mailcas / dov).toFixed(2)}x` : ''}`);
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const m = med(rows.map((x) => x.mailcas));
  const dv = rows.every((x) => x.dovecot) ? med(rows.map((x) => x.dovecot!)) : null;
  const ratios = dv ? rows.map((x) => x.mailcas / x.dovecot!) : [];
  console.log(`\nSTORE one at a time on one connection (${STORES} per round, median of ${ROUNDS}): mailcas ${m.toFixed(0)}/s, Dovecot Maildir ${dv ? dv.toFixed(0) : '-'}/s${dv ? `, ratio ${med(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})` : ''}`);
  const sorted = [...idleMs].sort((a, b) => a - b);
  console.log(`IDLE: another process's delivery announced (EXISTS) ${sorted[sorted.length >> 1].toFixed(0)} ms after its commit (median of ${sorted.length}; max ${sorted[sorted.length - 1].toFixed(0)} ms)`);
  console.log(`COPY of a message with a 20 MB attachment: the server process wrote ${(copyBytes / 1024).toFixed(1)} KiB (database and WAL; no blob bytes)`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
