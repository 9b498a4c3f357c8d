/**
 * npm run bench:lda: local delivery with a process per message, as an MTA's
 * mailbox_command or pipe(8) runs it: `mailcas deliver` next to Dovecot 2.3's
 * dovecot-lda with single-instance attachment storage (sdbox, SIS 128k, the
 * configuration of bench:lmtp), one message at a time from the same
 * generated mailbox, in the same run, when Dovecot is installed (and this
 * runs as root). Each round delivers the same messages to both, the two
 * alternating; the table gives the median time per delivery and the ratio
 * of the medians taken within each round.
 *
 *   npx tsx bench/lda.ts [--messages N] [--rounds N]
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { generatedDataset, OUT } from './datasets.js';
import { dovecotAvailable, dovecotConfig, LDA, VARIANTS } from './dovecot.js';

const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const arg = (name: string, dflt: number): number => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : dflt);
const MESSAGES = arg('--messages', 60);
const ROUNDS = arg('--rounds', 3);

/** Runs one delivery command with the message on stdin; resolves with its exit code and wall time. */
function deliver(cmd: string, args: string[], file: string): Promise<{ code: number; ms: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'ignore'] });
    fs.createReadStream(file).pipe(p.stdin);
    p.stdin.on('error', () => {});
    p.on('close', (c) => resolve({ code: c ?? -1, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Target {
  name: string;
  setUp(): void;
  run(user: string, file: string): Promise<{ code: number; ms: number }>;
  tearDown(): void;
}

function mailcas(dir: string): Target {
  const bin = path.join(ROOT, 'bin', 'mailcas.js');
  return {
    name: 'mailcas deliver',
    setUp() {
      fs.rmSync(dir, { recursive: true, force: true });
      if (spawnSync(process.execPath, [bin, '--store', dir, 'init'], { stdio: 'ignore' }).status !== 0) throw new Error('mailcas init failed');
    },
    run: (user, file) => deliver(process.execPath, [bin, '--store', dir, 'deliver', '--user', user, '--from', 'bench@example.org'], file),
    tearDown() {},
  };
}

function dovecot(dir: string): Target {
  const variant = VARIANTS.find((v) => v.minSize === '128k' && !v.zlib)!;
  const conf = path.join(dir, 'dovecot.conf');
  return {
    name: 'dovecot-lda (sdbox+SIS 128k)',
    setUp() {
      fs.rmSync(dir, { recursive: true, force: true });
      for (const d of ['run', 'mail', 'att', 'home', 'state']) fs.mkdirSync(path.join(dir, d), { recursive: true });
      spawnSync('chown', ['-R', 'mail:mail', path.join(dir, 'mail'), path.join(dir, 'att'), path.join(dir, 'home')]);
      fs.writeFileSync(conf, dovecotConfig(dir, variant));
      if (spawnSync('dovecot', ['-c', conf], { stdio: 'ignore' }).status !== 0) throw new Error(`dovecot did not start (see ${dir}/dovecot.log)`);
    },
    run: (user, file) => deliver(LDA, ['-c', conf, '-d', user, '-f', 'bench@example.org'], file),
    tearDown() {
      spawnSync('doveadm', ['-c', conf, 'stop'], { stdio: 'ignore' });
    },
  };
}

async function main(): Promise<void> {
  const why = dovecotAvailable();
  if (why) {
    console.log(`bench:lda needs Dovecot to compare with: ${why}`);
    return;
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('build first: npm run build');
  const ds = generatedDataset('mixed (generated)', { seed: 7, users: 16, messages: 400, profile: 'mixed' });
  const jobs = ds.users.flatMap((u) => u.files.map((f) => ({ user: u.user.split('@')[0], f }))).slice(0, MESSAGES);
  const bytes = jobs.reduce((a, j) => a + fs.statSync(j.f).size, 0);
  console.log(`bench:lda: ${jobs.length} messages (${(bytes / 1e6).toFixed(1)} MB) of the generated mixed mailbox, one process per delivery, one at a time; ${ROUNDS} rounds`);
  const work = path.join(OUT, 'lda');
  const targets = [mailcas(path.join(work, 'mailcas')), dovecot(path.join(work, 'dovecot'))];
  const times = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...targets].reverse() : targets;
    const med = new Map<string, number>();
    for (const t of order) {
      t.setUp();
      const ms: number[] = [];
      try {
        for (const j of jobs) {
          const r = await t.run(j.user, j.f);
          if (r.code !== 0) throw new Error(`${t.name} exited ${r.code} on ${j.f}`);
          ms.push(r.ms);
        }
      } finally {
        t.tearDown();
      }
      times.get(t.name)!.push(...ms);
      med.set(t.name, median(ms));
    }
    ratios.push(med.get(targets[1].name)! / med.get(targets[0].name)!);
  }
  console.log(`${'delivery command'.padEnd(32)} ${'median ms'.padStart(10)} ${'p90 ms'.padStart(8)}`);
  for (const t of targets) {
    const xs = [...times.get(t.name)!].sort((a, b) => a - b);
    console.log(`${t.name.padEnd(32)} ${median(xs).toFixed(1).padStart(10)} ${xs[Math.floor(xs.length * 0.9)].toFixed(1).padStart(8)}`);
  }
  const rs = [...ratios].sort((a, b) => a - b);
  console.log(`mailcas deliver speed relative to dovecot-lda (its time / ours, within each round): median ${median(rs).toFixed(2)}x (${rs[0].toFixed(2)}-${rs[rs.length - 1].toFixed(2)})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
