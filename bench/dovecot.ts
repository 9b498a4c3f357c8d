/**
 * Delivers a dataset into Dovecot 2.3 (Debian's dovecot-core) with
 * dovecot-lda, in a throw-away instance under a temp directory, and
 * measures what it stores. Needs root (Dovecot drops to the `mail` user).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import type { Dataset } from './datasets.js';
import { forEachLimit } from '../src/util/pool.js';

export const LDA = '/usr/lib/dovecot/dovecot-lda';

export interface DovecotVariant {
  name: string;
  /** mail_attachment_min_size, or null for no single-instance attachment storage. */
  minSize: string | null;
  zlib: boolean;
}

export const VARIANTS: DovecotVariant[] = [
  { name: 'Dovecot sdbox', minSize: null, zlib: false },
  { name: 'Dovecot sdbox+SIS 128k', minSize: '128k', zlib: false },
  { name: 'Dovecot sdbox+SIS min 1', minSize: '1', zlib: false },
  { name: 'Dovecot sdbox+SIS min 1+zlib', minSize: '1', zlib: true },
];

export function dovecotAvailable(): string | null {
  if (!fs.existsSync(LDA) || !fs.existsSync('/usr/lib/dovecot/lmtp') || spawnSync('dovecot', ['--version'], { stdio: 'ignore' }).status !== 0) return 'Dovecot is not installed (apt-get install dovecot-core dovecot-lmtpd)';
  if (process.getuid?.() !== 0) return 'Dovecot comparison needs root (the instance drops to the mail user)';
  return null;
}

/** A throw-away instance's configuration: sdbox under dir/mail, attachments (SIS) under dir/att as the variant says. */
export function dovecotConfig(dir: string, v: DovecotVariant): string {
  return `base_dir = ${dir}/run
log_path = ${dir}/dovecot.log
state_dir = ${dir}/state
protocols =
mail_location = sdbox:${dir}/mail/%n
${v.minSize ? `mail_attachment_dir = ${dir}/att\nmail_attachment_min_size = ${v.minSize}\nmail_attachment_fs = sis posix\nmail_attachment_hash = %{sha1}` : ''}
${v.zlib ? 'mail_plugins = $mail_plugins zlib\nplugin {\n  zlib_save = gz\n  zlib_save_level = 6\n}' : ''}
first_valid_uid = 8
mail_uid = mail
mail_gid = mail
default_internal_user = root
default_login_user = root
ssl = no
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=mail gid=mail home=${dir}/home/%n
}
`;
}

/** Bytes under a tree, each inode once (SIS hard-links its attachment files). */
export function treeBytes(dir: string, seen = new Set<number>()): { files: number; bytes: number; disk: number } {
  let files = 0;
  let bytes = 0;
  let disk = 0;
  if (!fs.existsSync(dir)) return { files, bytes, disk };
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const st = fs.statSync(path.join(e.parentPath, e.name));
    if (seen.has(st.ino)) continue;
    seen.add(st.ino);
    files++;
    bytes += st.size;
    disk += st.blocks * 512;
  }
  return { files, bytes, disk };
}

/**
 * How many delivered messages Dovecot gives back byte for byte: every
 * message of every user is fetched (doveadm fetch text) and its hash looked
 * up among the hashes of the files delivered to that user.
 */
function exactCount(conf: string, ds: Dataset): number {
  let exact = 0;
  for (const u of ds.users) {
    const user = u.user.split('@')[0];
    const want = new Map<string, number>();
    for (const f of u.files) {
      const h = crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
      want.set(h, (want.get(h) ?? 0) + 1);
    }
    const uids = spawnSync('doveadm', ['-c', conf, 'fetch', '-u', user, 'uid', 'mailbox', 'INBOX', 'all'], { encoding: 'latin1', maxBuffer: 1 << 28 })
      .stdout.split('\n')
      .filter((l) => l.startsWith('uid: '))
      .map((l) => l.slice(5).trim());
    for (const uid of uids) {
      const out = spawnSync('doveadm', ['-c', conf, 'fetch', '-u', user, 'text', 'mailbox', 'INBOX', 'uid', uid], { maxBuffer: 1 << 30 }).stdout as Buffer;
      const text = out.subarray(out.indexOf(0x0a) + 1); // after "text:"
      const h = crypto.createHash('sha256').update(text).digest('hex');
      const n = want.get(h) ?? 0;
      if (n > 0) {
        exact++;
        want.set(h, n - 1);
      }
    }
  }
  return exact;
}

export interface DovecotResult {
  variant: string;
  /** Mail files and attachment files (what holds the messages). */
  mailBytes: number;
  /** Including Dovecot's index and cache files. */
  totalBytes: number;
  diskBytes: number;
  attachmentFiles: number;
  failed: number;
  seconds: number;
  /** Messages given back byte for byte (when checked). */
  exact: number | null;
}

export async function deliverToDovecot(
  ds: Dataset,
  v: DovecotVariant,
  work: string,
  checkExact = false,
  /** keep: leave the instance's files (its directory and config are in the result); concurrency: deliveries at once (1: UIDs in file order). */
  opts: { keep?: boolean; concurrency?: number } = {},
): Promise<DovecotResult & { dir: string; conf: string }> {
  const dir = path.join(work, v.name.replace(/\W+/g, '-'));
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['run', 'mail', 'att', 'home', 'state']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  spawnSync('chown', ['-R', 'mail:mail', path.join(dir, 'mail'), path.join(dir, 'att'), path.join(dir, 'home')]);
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(conf, dovecotConfig(dir, v));
  // the daemon keeps inherited pipes open: give it none, or spawnSync waits for it forever
  const up = spawnSync('dovecot', ['-c', conf], { stdio: 'ignore' });
  if (up.status !== 0) throw new Error(`dovecot did not start (see ${dir}/dovecot.log)`);
  const t0 = Date.now();
  let failed = 0;
  let exact: number | null = null;
  try {
    for (let i = 0; i < 50 && !fs.existsSync(path.join(dir, 'run', 'auth-userdb')); i++) await new Promise((r) => setTimeout(r, 100));
    const jobs = ds.users.flatMap((u) => u.files.map((f) => ({ user: u.user.split('@')[0], f })));
    await forEachLimit(jobs, opts.concurrency ?? 4, async (j) => {
      let code = await new Promise<number>((resolve) => {
        const p = spawn(LDA, ['-c', conf, '-d', j.user, '-f', 'bench@example.org'], { stdio: ['pipe', 'ignore', 'ignore'] });
        fs.createReadStream(j.f).pipe(p.stdin);
        p.stdin.on('error', () => {});
        p.on('close', (c) => resolve(c ?? -1));
      });
      for (let attempt = 0; code === 75 && attempt < 3; attempt++) {
        // EX_TEMPFAIL (e.g. a lock timeout under concurrent delivery): retry as an MTA would
        code = await new Promise<number>((resolve) => {
          const p = spawn(LDA, ['-c', conf, '-d', j.user, '-f', 'bench@example.org'], { stdio: ['pipe', 'ignore', 'ignore'] });
          fs.createReadStream(j.f).pipe(p.stdin);
          p.stdin.on('error', () => {});
          p.on('close', (c) => resolve(c ?? -1));
        });
      }
      if (code !== 0) failed++;
    });
    if (checkExact) exact = exactCount(conf, ds);
  } finally {
    spawnSync('doveadm', ['-c', conf, 'stop'], { stdio: 'ignore' });
  }
  const seconds = (Date.now() - t0) / 1000;
  const seen = new Set<number>();
  const mail = treeBytes(path.join(dir, 'mail'), seen);
  const att = treeBytes(path.join(dir, 'att'), seen);
  let mailFiles = 0;
  for (const e of fs.readdirSync(path.join(dir, 'mail'), { recursive: true, withFileTypes: true })) {
    if (e.isFile() && /^u\.\d+$/.test(e.name)) mailFiles += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  const result = {
    dir,
    conf,
    variant: v.name,
    mailBytes: mailFiles + att.bytes,
    totalBytes: mail.bytes + att.bytes,
    diskBytes: mail.disk + att.disk,
    attachmentFiles: att.files,
    failed,
    seconds,
    exact,
  };
  if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

/**
 * Dovecot's IMAP as deployed: the instance configured in conf (its storage
 * settings) started as a daemon with an IMAP listener on loopback; answers
 * a connected socket and how to stop it.
 */
export async function startDovecotImap(d: string, conf: string): Promise<{ sock: net.Socket; stop(): void }> {
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const tcpConf = path.join(d, 'imap-tcp.conf');
  fs.writeFileSync(
    tcpConf,
    `${fs.readFileSync(conf, 'utf8').replace(/^protocols\s*=.*$/m, '')}
protocols = imap
# imap-login refuses to run as root
default_login_user = dovenull
default_internal_user = dovecot
disable_plaintext_auth = no
auth_mechanisms = plain login
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
}
`,
  );
  for (const sub of ['run', 'base', 'state']) fs.mkdirSync(path.join(d, sub), { recursive: true });
  if (spawnSync('dovecot', ['-c', tcpConf], { stdio: 'ignore' }).status !== 0) throw new Error(`dovecot did not start (see ${d})`);
  const stop = (): void => void spawnSync('doveadm', ['-c', tcpConf, 'stop'], { stdio: 'ignore' });
  let sock: net.Socket | null = null;
  for (let i = 0; i < 100 && !sock; i++) {
    sock = await new Promise<net.Socket | null>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => resolve(c));
      c.once('error', () => resolve(null));
    });
    if (!sock) await new Promise((r) => setTimeout(r, 50));
  }
  if (!sock) {
    stop();
    throw new Error(`Dovecot's IMAP does not listen on ${port}`);
  }
  sock.setNoDelay(true);
  return { sock, stop };
}
