/**
 * FETCH latency and throughput: whole messages, headers only, BODYSTRUCTURE
 * and partial bodies, asked of `mailcas imap` and `mailcas serve` (each its
 * own process, as deployed) and of Dovecot 2.3's IMAP (Debian's
 * dovecot-imapd: a throw-away instance with an IMAP listener on loopback,
 * as deployed, on the same messages) in the same run, by the same client
 * code over the same transport (TCP loopback), one request at a time
 * after warm-up passes of the same requests (`--warm N`, default 8).
 * Ratios are mailcas / Dovecot (> 1: mailcas faster),
 * against Dovecot on a Maildir (a whole message is one file read) and on
 * sdbox with single-instance attachment storage (its own dedup: attachments
 * of 128 KiB and more in files of their own, encoded again when read; the
 * configuration of the storage and LMTP benches), when dovecot-core is
 * installed too.
 *
 *   npm run bench:fetch [-- --messages 400] [--rounds 3] [--warm 8]
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { generatedDataset } from './datasets.js';
import { deliverToDovecot, dovecotAvailable, startDovecotImap, VARIANTS } from './dovecot.js';
import { ImapClient } from './imap-client.js';
import { spawnDaemon, waitForListening } from './daemon.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('messages', 400);
/** Every server measured this many times in turn (`--rounds N`). */
const ROUNDS = arg('rounds', 3);
/**
 * Passes of the same one-at-a-time requests before the measured one, for
 * every server (`--warm N`). A Node server's first few thousand requests
 * run while V8 compiles its hot paths on the two cores the client shares:
 * in a probe of 15,000 header requests, p99 1.4-2.7 ms over the first
 * 3,000 and 0.16-0.47 ms after. Servers run for days; the table is about
 * that state, not about a process's first second.
 */
const WARM = arg('warm', 8);

/** The warm-up: `WARM` passes of the requests about to be measured. */
async function warm(uids: number[], ask: (uid: number) => Promise<number>): Promise<void> {
  for (let k = 0; k < WARM; k++) for (const u of uids) await ask(u);
}

const RATIO_W = 22;
const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const BIN = path.join(ROOT, 'bin', 'mailcas.js');
const DOVECOT_IMAP = '/usr/lib/dovecot/imap';
const MAILDIR = 'Dovecot 2.3 Maildir';
const SIS = 'Dovecot 2.3 sdbox+SIS';

interface Row {
  server: string;
  workload: string;
  stat: Stat;
}

interface BulkRow {
  server: string;
  workload: string;
  perSec: number;
  mbPerSec: number;
}

interface Stat {
  median: number;
  p99: number;
  perSec: number;
  mbPerSec: number;
}

async function measure(uids: number[], ask: (uid: number) => Promise<number>): Promise<Stat> {
  const times: number[] = [];
  let bytes = 0;
  const t0 = performance.now();
  for (const u of uids) {
    const a = performance.now();
    bytes += await ask(u);
    times.push(performance.now() - a);
  }
  const total = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], p99: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))], perSec: uids.length / total, mbPerSec: bytes / total / 1e6 };
}

const WORKLOADS: { name: string; imap: string; http: (id: number) => { path: string; headers?: Record<string, string> } }[] = [
  { name: 'whole message', imap: 'BODY.PEEK[]', http: (id) => ({ path: `/messages/${id}` }) },
  { name: 'headers only', imap: 'BODY.PEEK[HEADER]', http: (id) => ({ path: `/messages/${id}/section/HEADER` }) },
  { name: 'BODYSTRUCTURE', imap: 'BODYSTRUCTURE', http: (id) => ({ path: `/messages/${id}/fetch?items=BODYSTRUCTURE` }) },
  { name: 'partial body', imap: 'BODY.PEEK[1]<0.1024>', http: (id) => ({ path: `/messages/${id}/section/1`, headers: { Range: 'bytes=0-1023' } }) },
];

async function main(): Promise<void> {
  const ds = generatedDataset('mixed', { seed: 11, users: 1, messages: N, profile: 'mixed' });
  const files = ds.users.flatMap((u) => u.files).slice(0, N);
  const work = fs.mkdtempSync('/tmp/mailcas-bench-fetch-');
  fs.chmodSync(work, 0o755);
  const storeDir = path.join(work, 'store');
  const s = await Store.init(storeDir, { logger: silentLogger });
  const ids: number[] = [];
  let total = 0;
  for (const f of files) {
    const b = fs.readFileSync(f);
    // Dovecot answers CRLF whatever the file holds: both sides get CRLF messages so they send the same bytes
    const crlf = Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    total += crlf.length;
    ids.push(Number((await s.ingest(crlf, { user: 'u1' })).id));
  }
  await s.close();
  console.log(`fetch bench: ${files.length} messages, ${(total / 1e6).toFixed(1)} MB (generated mixed mailbox), one request at a time after ${WARM} warm-up passes of the same requests`);
  const passwd = path.join(work, 'passwd');
  fs.writeFileSync(passwd, 'u1:{PLAIN}bench\n');
  const tokens = path.join(work, 'tokens');
  fs.writeFileSync(tokens, 'bench-token-0123456789 u1\n');

  // the servers' set-ups, once; then every server measured in turn, ROUNDS times (this machine's speed moves
  // between minutes: a ratio is taken within a round, and the table gives medians and the range)
  const passes: ((rows: Row[], bulk: BulkRow[]) => Promise<void>)[] = [];
  passes.push(async (rows, bulk) => {
    const imapProc = spawnDaemon(process.execPath, [BIN, '--store', storeDir, 'imap', '--listen', '127.0.0.1:0', '--passwd', passwd], { stdio: ['ignore', 'ignore', 'pipe'] });
    const imapOn = await waitForListening(imapProc, 'imap-listening');
    const sock = net.connect(Number(imapOn.split(':').pop()), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.setNoDelay(true); // as for Dovecot below
    const mc = new ImapClient(sock, sock);
    await mc.greeting();
    await mc.run('LOGIN u1 bench');
    await mc.run('EXAMINE INBOX');
    for (const w of WORKLOADS) {
      await mc.run(`FETCH 1:* (${w.imap})`); // warm-up
      const ask = (u: number): Promise<number> => mc.run(`UID FETCH ${u} (${w.imap})`);
      await warm(ids, ask);
      rows.push({ server: 'mailcas imap', workload: w.name, stat: await measure(ids, ask) });
      bulk.push({ server: 'mailcas imap', workload: w.name, ...(await measureBulk(mc, w.imap, ids.length)) });
    }
    sock.end();
    imapProc.kill('SIGTERM');
    await new Promise((r) => imapProc.once('exit', r));
  });
  passes.push(async (rows) => {
    const httpProc = spawnDaemon(process.execPath, [BIN, '--store', storeDir, 'serve', '--listen', '127.0.0.1:0', '--tokens', tokens], { stdio: ['ignore', 'ignore', 'pipe'] });
    const httpOn = await waitForListening(httpProc, 'serve-listening');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (const w of WORKLOADS) {
      const [host, port] = [httpOn.slice(0, httpOn.lastIndexOf(':')), Number(httpOn.slice(httpOn.lastIndexOf(':') + 1))];
      const ask = (id: number): Promise<number> =>
        new Promise((resolve, reject) => {
          const r = w.http(id);
          const req = http.get({ host, port, agent, path: `/v1/users/u1${r.path}`, headers: { Authorization: 'Bearer bench-token-0123456789', ...r.headers } }, (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => (n += c.length));
            res.on('end', () => ((res.statusCode ?? 500) >= 300 ? reject(new Error(`${r.path}: ${res.statusCode}`)) : resolve(n)));
          });
          req.on('error', reject);
        });
      await warm(ids, ask);
      rows.push({ server: 'mailcas serve (HTTP)', workload: w.name, stat: await measure(ids, ask) });
    }
    agent.destroy();
    httpProc.kill('SIGTERM');
    await new Promise((r) => httpProc.once('exit', r));
  });
  // Dovecot's IMAP on the same (CRLF) messages, UIDs 1..n in the same order: on a Maildir (its plain
  // storage: a whole message is one file read), and on sdbox with single-instance attachment storage
  // (its dedup, as in the storage and LMTP benches: attachments over 128 KiB in files of their own,
  // base64 encoded again on the way out)
  const dovecot = fs.existsSync(DOVECOT_IMAP) && process.getuid?.() === 0;
  if (!dovecot) console.log('Dovecot comparison skipped: needs root and dovecot-imapd (apt-get install dovecot-imapd)');
  else {
    const d = path.join(work, 'dovecot');
    const crlfFiles = files.map((f, i) => {
      const out = path.join(work, 'crlf', `${String(i + 1).padStart(6, '0')}.eml`);
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, Buffer.from(fs.readFileSync(f).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1'));
      return out;
    });
    for (const sub of ['base', 'state', 'md/cur', 'md/new', 'md/tmp']) fs.mkdirSync(path.join(d, sub), { recursive: true });
    crlfFiles.forEach((f, i) => fs.copyFileSync(f, path.join(d, 'md', 'cur', `${String(i + 1).padStart(6, '0')}.bench:2,S`)));
    spawnSync('chown', ['-R', 'nobody:nogroup', path.join(d, 'md')]);
    const conf = path.join(d, 'dovecot.conf');
    fs.writeFileSync(
      conf,
      `base_dir = ${d}/base\nstate_dir = ${d}/state\nlog_path = ${d}/dovecot.log\nssl = no\nmail_location = maildir:${d}/md\nfirst_valid_uid = 1\nfirst_valid_gid = 1\nmail_uid = nobody\nmail_gid = nogroup\n` +
        `default_internal_user = root\ndefault_login_user = root\npassdb {\n  driver = static\n  args = nopassword=y\n}\nuserdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=${d}/home/%n\n}\n`,
    );
    passes.push((rows, bulk) => dovecotRows(MAILDIR, d, conf, files.length, rows, bulk));
    if (dovecotAvailable()) console.log(`Dovecot sdbox+SIS comparison skipped: ${dovecotAvailable()}`);
    else {
      const ds = { name: 'fetch', users: [{ user: 'u1', files: crlfFiles }], messages: crlfFiles.length, bytes: total };
      const sis = await deliverToDovecot(ds, VARIANTS.find((v) => v.name === 'Dovecot sdbox+SIS 128k')!, work, false, { keep: true, concurrency: 1 });
      if (sis.failed) throw new Error(`dovecot-lda failed on ${sis.failed} messages`);
      passes.push((rows, bulk) => dovecotRows(SIS, sis.dir, sis.conf, files.length, rows, bulk));
    }
  }
  const rounds: { rows: Row[]; bulk: BulkRow[] }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = { rows: [] as Row[], bulk: [] as BulkRow[] };
    for (const pass of passes) {
      await pass(round.rows, round.bulk);
    }
    rounds.push(round);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const rows: Row[] = rounds[0].rows.map((r0) => {
    const all = rounds.map((x) => x.rows.find((y) => y.server === r0.server && y.workload === r0.workload)!.stat);
    return { server: r0.server, workload: r0.workload, stat: { median: median(all.map((a) => a.median)), p99: median(all.map((a) => a.p99)), perSec: median(all.map((a) => a.perSec)), mbPerSec: median(all.map((a) => a.mbPerSec)) } };
  });
  const bulk: BulkRow[] = rounds[0].bulk.map((b0) => {
    const all = rounds.map((x) => x.bulk.find((y) => y.server === b0.server && y.workload === b0.workload)!);
    return { server: b0.server, workload: b0.workload, perSec: median(all.map((a) => a.perSec)), mbPerSec: median(all.map((a) => a.mbPerSec)) };
  });
  const fmt = (x: number, d = 2) => x.toFixed(d).padStart(9);
  // ratios: mailcas / Dovecot on a Maildir, and / Dovecot with its single-instance attachment storage,
  // taken within each round: the median, and the range over the rounds
  const ratios = (rate: (round: number, x: { server: string; workload: string }) => number | null, r: { server: string; workload: string }): string =>
    r.server.startsWith('Dovecot')
      ? ''.padStart(2 * RATIO_W)
      : [MAILDIR, SIS]
          .map((b) => {
            const xs = rounds.map((_, i) => {
              const base = rate(i, { server: b, workload: r.workload });
              return base ? rate(i, r)! / base : null;
            });
            if (xs.some((x) => x === null)) return '-'.padStart(RATIO_W);
            const v = xs as number[];
            return `${median(v).toFixed(2)}x${ROUNDS > 1 ? ` (${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)})` : ''}`.padStart(RATIO_W);
          })
          .join('');
  const head = `${'vs Maildir'.padStart(RATIO_W)}${'vs SIS'.padStart(RATIO_W)}`;
  const rowRate = (i: number, x: { server: string; workload: string }): number | null => rounds[i].rows.find((y) => y.server === x.server && y.workload === x.workload)?.stat.perSec ?? null;
  const bulkRate = (i: number, x: { server: string; workload: string }): number | null => rounds[i].bulk.find((y) => y.server === x.server && y.workload === x.workload)?.perSec ?? null;
  console.log(`\nmedians of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}; ratios within a round: median (range)`);
  console.log(`${'server'.padEnd(24)}${'workload'.padEnd(16)}${'median ms'.padStart(10)}${'p99 ms'.padStart(10)}${'req/s'.padStart(10)}${'MB/s'.padStart(10)}${head}`);
  for (const r of rows) console.log(`${r.server.padEnd(24)}${r.workload.padEnd(16)} ${fmt(r.stat.median, 3)} ${fmt(r.stat.p99, 3)} ${fmt(r.stat.perSec, 0)} ${fmt(r.stat.mbPerSec)}${ratios(rowRate, r)}`);
  console.log(`\nFETCH 1:* in one command (the server's own throughput; best of 3 in a round)\n${'server'.padEnd(24)}${'workload'.padEnd(16)}${'msg/s'.padStart(10)}${'MB/s'.padStart(10)}${head}`);
  for (const r of bulk) console.log(`${r.server.padEnd(24)}${r.workload.padEnd(16)} ${fmt(r.perSec, 0)} ${fmt(r.mbPerSec)}${ratios(bulkRate, r)}`);
  fs.rmSync(work, { recursive: true, force: true });
}

/**
 * Dovecot's IMAP as deployed: the instance configured in conf (its storage
 * settings) started as a daemon with an IMAP listener on loopback, the same
 * transport mailcas is measured over; LOGIN as u1, every workload measured.
 */
async function dovecotRows(server: string, d: string, conf: string, n: number, rows: Row[], bulk: BulkRow[]): Promise<void> {
  const { sock, stop } = await startDovecotImap(d, conf);
  try {
    const dc = new ImapClient(sock, sock);
    await dc.greeting();
    await dc.run('LOGIN u1 bench');
    await dc.run('EXAMINE INBOX');
    const uids = Array.from({ length: n }, (_, i) => i + 1);
    for (const w of WORKLOADS) {
      await dc.run(`FETCH 1:* (${w.imap})`); // warm-up: Dovecot builds its index and cache here
      const ask = (u: number): Promise<number> => dc.run(`UID FETCH ${u} (${w.imap})`);
      await warm(uids, ask);
      rows.push({ server, workload: w.name, stat: await measure(uids, ask) });
      bulk.push({ server, workload: w.name, ...(await measureBulk(dc, w.imap, uids.length)) });
    }
    sock.end('z LOGOUT\r\n');
  } finally {
    stop();
  }
}

async function measureBulk(c: ImapClient, item: string, n: number): Promise<{ perSec: number; mbPerSec: number }> {
  let best = { perSec: 0, mbPerSec: 0 };
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const bytes = await c.run(`FETCH 1:* (${item})`);
    const s = (performance.now() - t0) / 1000;
    if (n / s > best.perSec) best = { perSec: n / s, mbPerSec: bytes / s / 1e6 };
  }
  return best;
}

await main();
