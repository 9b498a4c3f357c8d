// Dovecot's IMAP (Debian's dovecot-imapd) as an oracle: one preauthenticated session over
// stdin/stdout on a Maildir, no daemon (see shared docs IMAP-ORACLE.md). Needs root.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ImapReader, fetchPairs } from '../../src/fetch/parse.js';
import type { ImapValue } from '../../src/fetch/wire.js';
import { tmpDir } from '../helpers.js';

export const DOVECOT_IMAP = '/usr/lib/dovecot/imap';
/** Available as root with dovecot-imapd installed; MAILCAS_REQUIRE_ORACLE=1 (CI) makes its absence a failure, not a skip. */
export const oracleAvailable = (process.getuid?.() === 0 && fs.existsSync(DOVECOT_IMAP)) || !!process.env.MAILCAS_REQUIRE_ORACLE;

export class DovecotOracle {
  readonly dir: string;
  readonly conf: string;

  /** A Maildir holding these messages (in this order: UIDs 1..n), each with these Maildir flags (default S: \\Seen). */
  constructor(messages: Buffer[], flags = 'S') {
    this.dir = tmpDir('mailcas-oracle-');
    fs.chmodSync(this.dir, 0o755);
    for (const d of ['base', 'state', 'md/cur', 'md/new', 'md/tmp']) fs.mkdirSync(path.join(this.dir, d), { recursive: true });
    messages.forEach((m, i) => fs.writeFileSync(path.join(this.dir, 'md', 'cur', `${String(i + 1).padStart(6, '0')}.oracle:2,${flags}`), m));
    this.conf = path.join(this.dir, 'dovecot.conf');
    fs.writeFileSync(
      this.conf,
      `base_dir = ${this.dir}/base\nstate_dir = ${this.dir}/state\nlog_path = ${this.dir}/dovecot.log\nssl = no\nmail_location = maildir:${this.dir}/md\nfirst_valid_uid = 1\nfirst_valid_gid = 1\nmail_uid = nobody\nmail_gid = nogroup\n`,
    );
    spawnSync('chown', ['-R', 'nobody:nogroup', path.join(this.dir, 'md')]);
  }

  /** Runs commands in one preauthenticated session (tags t0, t1, ...) and returns what Dovecot answered, as it came. */
  transcript(commands: string[]): string {
    const input = [...commands.map((c, i) => `t${i} ${c}`), 'z LOGOUT', ''].join('\r\n');
    const file = path.join(this.dir, 'script');
    const outFile = path.join(this.dir, 'transcript');
    fs.writeFileSync(file, input);
    spawnSync('sh', ['-c', `cat ${file} | ${DOVECOT_IMAP} -c ${this.conf} > ${outFile}`], { env: { ...process.env, USER: 'u', HOME: this.dir }, stdio: 'ignore' });
    return fs.readFileSync(outFile, 'latin1');
  }

  /**
   * One preauthenticated session run a command at a time (each sent once the
   * previous one is answered: Dovecot runs pipelined commands in parallel),
   * through a FIFO; answers each command's response lines, its tagged line last.
   */
  async session(commands: string[]): Promise<string[][]> {
    const fifo = path.join(this.dir, 'in.fifo');
    const outFile = path.join(this.dir, 'session.out');
    fs.rmSync(fifo, { force: true });
    spawnSync('mkfifo', [fifo]);
    fs.writeFileSync(outFile, '');
    const child = spawn('sh', ['-c', `exec ${DOVECOT_IMAP} -c ${this.conf} < ${fifo} > ${outFile}`], { env: { ...process.env, USER: 'u', HOME: this.dir }, stdio: 'ignore' });
    const fd = fs.openSync(fifo, 'w');
    const answers: string[][] = [];
    let seen = 0;
    try {
      for (const [i, c] of [...commands, 'LOGOUT'].entries()) {
        fs.writeSync(fd, `t${i} ${c}\r\n`);
        for (let k = 0; ; k++) {
          const text = fs.readFileSync(outFile, 'latin1').slice(seen);
          const m = new RegExp(`(^|\\r\\n)t${i} [^\\r\\n]*\\r\\n`).exec(text);
          if (m) {
            const part = text.slice(0, m.index + m[0].length);
            seen += part.length;
            answers.push(part.split('\r\n').filter((l) => l && !l.startsWith('* PREAUTH')));
            break;
          }
          if (k > 500) throw new Error(`Dovecot did not answer ${c}: ${text}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    } finally {
      fs.closeSync(fd);
      child.kill();
    }
    return answers.slice(0, commands.length);
  }

  /** Runs commands (after SELECT INBOX) and returns the FETCH responses by sequence number. */
  fetch(commands: string[]): Map<number, Map<string, ImapValue>> {
    const input = ['a SELECT INBOX', ...commands.map((c, i) => `f${i} ${c}`), 'z LOGOUT', ''].join('\r\n');
    // stdin a real pipe, stdout a file: Node's child pipes are sockets, which the imap binary takes for inetd and refuses
    const file = path.join(this.dir, 'commands');
    const outFile = path.join(this.dir, 'responses');
    fs.writeFileSync(file, input);
    spawnSync('sh', ['-c', `cat ${file} | ${DOVECOT_IMAP} -c ${this.conf} > ${outFile}`], { env: { ...process.env, USER: 'u', HOME: this.dir }, stdio: 'ignore' });
    const out = fs.readFileSync(outFile);
    const res = new Map<number, Map<string, ImapValue>>();
    const rd = new ImapReader(out);
    while (!rd.done) {
      const start = rd.pos;
      const star = rd.value();
      if (star && typeof star === 'object' && 'atom' in star && star.atom === '*') {
        const n = rd.value();
        const what = rd.value();
        if (typeof n === 'number' && what && typeof what === 'object' && 'atom' in what && what.atom.toUpperCase() === 'FETCH') {
          const pairs = fetchPairs(rd.value());
          const have = res.get(n) ?? new Map();
          for (const [k, v] of pairs) have.set(k, v);
          res.set(n, have);
          rd.atEol();
          continue;
        }
      }
      rd.pos = start;
      rd.restOfLine();
    }
    return res;
  }
}
