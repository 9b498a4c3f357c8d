/**
 * npm run bench:lmtp: LMTP delivery with one real client (Python's smtplib.LMTP,
 * test/delivery/lmtp_client.py) at concurrency 1, 4 and 16 on a generated
 * mailbox: mailcas lmtp next to Dovecot 2.3's LMTP with single-instance
 * attachment storage (mail_attachment_dir, fsync as configured by default) on
 * the same messages and client in the same run, when Dovecot is installed
 * (and this runs as root). Then the latency of small deliveries while a 200 MB
 * message is delivered on another connection. "srv CPU ms/msg": the
 * machine's busy CPU time during a run less the clients' own, per message
 * (what the server and the kernel's work for it cost; the same accounting
 * for both servers). Each concurrency runs N times (default 3) with the
 * servers alternating; the table gives medians and the range of the ratios
 * measured within a round. Before it is timed, each server (started afresh
 * for every run) is given 100 messages of other mail (`--warm N`): a Node
 * server compiles its hot paths over its first messages.
 *
 *   npx tsx bench/lmtp.ts [--quick] [--rounds N] [--warm N]
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generatedDataset, OUT } from './datasets.js';
import { dovecotAvailable } from './dovecot.js';
import { spawnDaemon } from './daemon.js';

const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const CLIENT = path.join(ROOT, 'test', 'delivery', 'lmtp_client.py');
const quick = process.argv.includes('--quick');
/** Runs of each concurrency, the servers alternating (`--rounds N`, default 3). */
const ROUNDS = process.argv.includes('--rounds') ? Number(process.argv[process.argv.indexOf('--rounds') + 1]) : 3;
/** Messages of other mail delivered to each server before it is timed (`--warm N`, default 100; 0: none). */
const WARM = process.argv.includes('--warm') ? Number(process.argv[process.argv.indexOf('--warm') + 1]) : 100;

interface Server {
  name: string;
  port: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startMailcas(dir: string): Promise<Server> {
  const port = await freePort();
  fs.rmSync(dir, { recursive: true, force: true });
  const p: ChildProcess = spawnDaemon(process.execPath, [path.join(ROOT, 'bin', 'mailcas.js'), '--store', dir, 'lmtp', '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitPort(port);
  return {
    name: 'mailcas lmtp',
    port,
    stop: () =>
      new Promise((r) => {
        p.on('close', () => r());
        p.kill('SIGTERM');
      }),
  };
}

async function startDovecot(dir: string): Promise<Server> {
  const port = await freePort();
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['run', 'mail', 'att', 'home', 'state']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  spawnSync('chown', ['-R', 'mail:mail', path.join(dir, 'mail'), path.join(dir, 'att'), path.join(dir, 'home')]);
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(
    conf,
    `base_dir = ${dir}/run
log_path = ${dir}/dovecot.log
state_dir = ${dir}/state
protocols = lmtp
mail_location = sdbox:${dir}/mail/%n
mail_attachment_dir = ${dir}/att
mail_attachment_min_size = 128k
mail_attachment_fs = sis posix
mail_attachment_hash = %{sha1}
first_valid_uid = 8
mail_uid = mail
mail_gid = mail
default_internal_user = root
default_login_user = root
ssl = no
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
}
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=mail gid=mail home=${dir}/home/%n
}
`,
  );
  const up = spawnSync('dovecot', ['-c', conf], { stdio: 'ignore' });
  if (up.status !== 0) throw new Error(`dovecot did not start (see ${dir}/dovecot.log)`);
  await waitPort(port);
  return { name: 'Dovecot 2.3 lmtp (SIS 128k)', port, stop: async () => void spawnSync('doveadm', ['-c', conf, 'stop'], { stdio: 'ignore' }) };
}

interface Tx {
  ms: number;
  replies?: [string, number, string][];
}

/** CPU seconds the client used (user + system), from the shell's `times` after it exits. */
const clientCpu: number[] = [];

function client(port: number, rcpt: string, files: string[]): Promise<Tx[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', 'python3 "$@"; rc=$?; times >&2; exit $rc', 'client', CLIENT, '127.0.0.1', String(port), 'bench@example.com', rcpt, ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('close', (code) => {
      // `times`: the shell's user/system, then its children's
      const t = [...err.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      if (t.length >= 4) clientCpu.push(t[2] + t[3]);
      code === 0 ? resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))) : reject(new Error(err));
    });
  });
}

/** Busy CPU seconds of the whole machine (all cores, user + system + interrupts), from /proc/stat. */
function machineBusy(): number {
  const [, ...f] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const v = f.map(Number); // user nice system idle iowait irq softirq steal
  return (v[0] + v[1] + v[2] + v[5] + v[6]) / 100;
}

/**
 * Messages/s, and the CPU the server side used per message: the machine's
 * busy time during the run less what the clients used (the server's
 * processes and threads, and the kernel's work for them: the
 * same accounting for both servers).
 */
async function throughput(srv: Server, files: string[], conc: number): Promise<{ seconds: number; ok: number; serverCpuMs: number }> {
  const shares = Array.from({ length: conc }, (_, i) => files.filter((_, k) => k % conc === i));
  clientCpu.length = 0;
  const busy0 = machineBusy();
  const t0 = process.hrtime.bigint();
  const res = await Promise.all(shares.map((fs_, i) => client(srv.port, `bench${i}@example.org`, fs_)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const busy = machineBusy() - busy0;
  const serverCpuMs = ((busy - clientCpu.reduce((a, b) => a + b, 0)) * 1000) / files.length;
  return { seconds, ok: res.flat().filter((t) => t.replies?.[0]?.[1] === 250).length, serverCpuMs };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

function bigMessage(file: string): void {
  if (fs.existsSync(file)) return;
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, 'From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--XYZ\r\n\r\nsee attached\r\n--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n');
  const seed = crypto.randomBytes(57 * 16384);
  for (let i = 0; i < 160; i++) {
    seed.writeUInt32LE(i, 0);
    fs.writeSync(fd, seed.toString('base64').replace(/(.{76})/g, '$1\r\n'));
  }
  fs.writeSync(fd, '\r\n--XYZ--\r\n');
  fs.closeSync(fd);
}

async function main(): Promise<void> {
  if (spawnSync('python3', ['--version']).status !== 0) throw new Error('python3 is needed for the LMTP client');
  const ds = generatedDataset('mixed (generated)', { seed: 7, users: 16, messages: quick ? 400 : 1500, profile: 'mixed' });
  const files = ds.users.flatMap((u) => u.files);
  // other mail (its own seed, so the timed messages still arrive new) delivered to every server before it is timed:
  // each round starts a fresh server, and a Node one compiles its hot paths over its first messages
  const warmFiles = WARM ? generatedDataset('warm-up', { seed: 8, users: 4, messages: WARM, profile: 'mixed' }).users.flatMap((u) => u.files) : [];
  const work = path.join(OUT, 'lmtp');
  fs.mkdirSync(work, { recursive: true });
  const why = dovecotAvailable();
  const starters: [string, () => Promise<Server>][] = [['mailcas', () => startMailcas(path.join(work, 'mailcas'))]];
  if (!why) starters.push(['dovecot', () => startDovecot(path.join(work, 'dovecot'))]);
  console.log(`node ${process.version}; ${ds.messages} messages, ${(ds.bytes / 1e6).toFixed(1)} MB (${ds.name}); client: Python smtplib.LMTP, one transaction per message; each server warmed up with ${warmFiles.length} other messages`);
  if (why) console.log(`Dovecot: skipped (${why})`);
  const rows: string[][] = [];
  // each concurrency ROUNDS times, the servers alternating: medians, and the spread of the per-round ratios
  // (this machine's speed moves between minutes; a ratio is only fair within a round)
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  for (const conc of [1, 4, 16]) {
    const got = new Map<string, { name: string; rate: number[]; cpu: number[]; ok: number[] }>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [key, start] of starters) {
        const srv = await start();
        try {
          if (warmFiles.length) await client(srv.port, 'warm-up@example.org', warmFiles);
          const r = await throughput(srv, files, conc);
          const g = got.get(key) ?? { name: srv.name, rate: [], cpu: [], ok: [] };
          g.rate.push(ds.messages / r.seconds);
          g.cpu.push(r.serverCpuMs);
          g.ok.push(r.ok);
          got.set(key, g);
        } finally {
          await srv.stop();
        }
      }
    }
    const m = got.get('mailcas')!;
    const d = got.get('dovecot');
    for (const [key, g] of got) {
      const rate = median(g.rate);
      const ratios = d && key === 'dovecot' ? m.rate.map((x, i) => x / d.rate[i]) : [];
      const vs = ratios.length ? `mailcas ${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})` : '';
      rows.push([g.name, String(conc), rate.toFixed(0), ((ds.bytes / 1e6) * (rate / ds.messages)).toFixed(1), median(g.cpu).toFixed(1), `${Math.min(...g.ok)}/${ds.messages}`, vs]);
    }
  }
  const head = ['server', 'conc', 'msg/s', 'MB/s', 'srv CPU ms/msg', '250s', `ratio (median of ${ROUNDS} rounds, range)`];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  console.log([head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n'));

  // latency of small deliveries, alone and while a 200 MB message goes in on another connection
  const big = path.join(work, 'big-200mb.eml');
  bigMessage(big);
  const small = files.filter((f) => fs.statSync(f).size < 20_000).slice(0, quick ? 60 : 200);
  console.log(`\nsmall-delivery latency (${small.length} messages under 20 KB, one session), ms:`);
  for (const [, start] of starters) {
    const srv = await start();
    try {
      const alone = (await client(srv.port, 'small@example.org', small)).map((t) => t.ms);
      const bigTx = client(srv.port, 'big@example.org', [big]);
      await new Promise((r) => setTimeout(r, 300));
      const during = (await client(srv.port, 'small@example.org', small)).map((t) => t.ms);
      const b = await bigTx;
      console.log(
        `${srv.name.padEnd(30)} alone median ${pct(alone, 50).toFixed(1)} p99 ${pct(alone, 99).toFixed(1)} | during a 200 MB delivery median ${pct(during, 50).toFixed(1)} p99 ${pct(during, 99).toFixed(1)} (the 200 MB one: ${(b[0].ms / 1000).toFixed(1)} s, reply ${b[0].replies?.[0]?.[1]})`,
      );
    } finally {
      await srv.stop();
    }
  }
}

await main();
