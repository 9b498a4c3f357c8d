// The read-write IMAP front next to Dovecot's IMAP (the oracle) on the same command sequence, a command
// at a time: FLAGS answers of STORE (.SILENT, UID, UNCHANGEDSINCE and MODIFIED), EXPUNGE order, COPYUID
// and MOVE, SEARCH over flags, STATUS, CONDSTORE's MODSEQ and HIGHESTMODSEQ, QRESYNC's VANISHED
// (EARLIER). Values that differ by design are normalised: UIDVALIDITY, modseq numbers, the UIDs a copy
// gets in its new mailbox (mailcas's message ids are store-wide), \Recent (never set by mailcas, gone in
// IMAP4rev2), human text, the order of items within one FETCH, FLAGS/PERMANENTFLAGS lists, and a mailbox
// name as a quoted string or an atom, the hierarchy delimiter, the order of LIST answers.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { DovecotOracle, oracleAvailable } from './dovecot-oracle.js';
import { tmpDir } from '../helpers.js';
import { startImap, stop } from './start-imap.js';

const SCRIPT = [
  'SELECT INBOX',
  'STORE 2 +FLAGS (\\Flagged)',
  'STORE 1:3 +FLAGS.SILENT (\\Deleted)',
  'UID STORE 1 -FLAGS (\\Deleted)',
  'FETCH 1:* (FLAGS)',
  'SEARCH DELETED',
  'EXPUNGE',
  'CREATE Other',
  'UID COPY 1 Other',
  'SEARCH FLAGGED',
  'UID MOVE 4 Other',
  'STATUS Other (MESSAGES UNSEEN)',
  'SUBSCRIBE Other',
  'UNSUBSCRIBE INBOX',
  'LIST (SUBSCRIBED) "" "*"',
  'LIST "" ("O*" "INBOX") RETURN (SUBSCRIBED)',
  'LSUB "" "*"',
  'ENABLE CONDSTORE',
  'STORE 1 +FLAGS (Kw)',
  'UID STORE 1 (UNCHANGEDSINCE 1) +FLAGS (Other)',
  'FETCH 1 (FLAGS MODSEQ)',
  'SELECT Other',
  'FETCH 1:* (FLAGS)',
  'ENABLE QRESYNC',
  'SELECT INBOX (QRESYNC ({uv} 1))',
  'STORE 1 FLAGS.SILENT (\\Answered)',
  'NOOP',
];

/** One command's answer with what differs by design taken out (see the header). */
function normalise(lines: string[]): string[] {
  const out: string[] = [];
  for (let l of lines) {
    if (/^\* \d+ RECENT$/.test(l) || /^\* FLAGS /.test(l) || /^\* OK \[PERMANENTFLAGS /.test(l) || /^\* BYE/.test(l)) continue;
    l = l.replace(/ ?\\Recent/g, '').replace(/\( /g, '(');
    l = l.replace(/UIDVALIDITY \d+/g, 'UIDVALIDITY V').replace(/HIGHESTMODSEQ \d+/g, 'HIGHESTMODSEQ M').replace(/MODSEQ \(\d+\)/g, 'MODSEQ (M)').replace(/UIDNEXT \d+/g, 'UIDNEXT U');
    l = l.replace(/\[COPYUID \d+ (\S+) \S+\]/, '[COPYUID V $1 D]');
    l = l.replace(/^\* STATUS "([^"]*)"/, '* STATUS $1');
    // tagged and untagged status lines: the code kept, the text dropped
    const st = /^(\S+) (OK|NO|BAD)( \[[^\]]*\])?.*$/.exec(l);
    if (st) l = `${st[1]} ${st[2]}${st[3] ?? ''}`;
    // the hierarchy delimiter (Dovecot's Maildir++ has "."), a name quoted or not
    l = l.replace(/^(\* (?:LIST|LSUB) \([^)]*\)) "[./]" "?([^"]*)"?$/, '$1 D $2');
    // attributes of LIST in name order
    l = l.replace(/^\* (LIST|LSUB) \(([^)]*)\)/, (_m, c: string, a: string) => `* ${c} (${a.split(' ').filter(Boolean).sort().join(' ')})`);
    // FETCH items in name order, flags in name order
    const f = /^\* (\d+) FETCH \((.*)\)$/.exec(l);
    if (f) {
      const items: string[] = [];
      const re = /(\w[\w.]*) (\([^)]*\)|\S+)/g;
      for (let m = re.exec(f[2]); m; m = re.exec(f[2])) items.push(m[1] === 'FLAGS' ? `FLAGS (${m[2].slice(1, -1).split(' ').filter(Boolean).sort().join(' ')})` : `${m[1]} ${m[2]}`);
      l = `* ${f[1]} FETCH (${items.sort().join(' ')})`;
    }
    out.push(l);
  }
  // LIST answers in no defined order (Dovecot: pattern by pattern): in name order
  const lists = out.filter((l) => /^\* (LIST|LSUB) /.test(l)).sort();
  return [...lists, ...out.filter((l) => !/^\* (LIST|LSUB) /.test(l))];
}

/** mailcas: the same script over TCP after LOGIN, a command at a time. */
async function mailcasSession(port: number, commands: string[]): Promise<string[][]> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let buf = '';
  let wake: (() => void) | null = null;
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    wake?.();
  });
  const until = async (tag: string): Promise<string[]> => {
    for (;;) {
      const m = new RegExp(`(^|\\r\\n)${tag} [^\\r\\n]*\\r\\n`).exec(buf);
      if (m) {
        const part = buf.slice(0, m.index + m[0].length);
        buf = buf.slice(part.length);
        return part.split('\r\n').filter(Boolean);
      }
      await new Promise<void>((r) => (wake = r));
    }
  };
  await until('\\*');
  sock.write('l LOGIN u pw\r\n');
  await until('l');
  const answers: string[][] = [];
  for (const [i, c] of commands.entries()) {
    sock.write(`t${i} ${c}\r\n`);
    answers.push(await until(`t${i}`));
  }
  sock.end('z LOGOUT\r\n');
  return answers;
}

/** Runs SCRIPT, filling in {uv} from the first SELECT's UIDVALIDITY. */
async function runScript(run: (commands: string[]) => Promise<string[][]>): Promise<string[][]> {
  const first = await run([SCRIPT[0]]);
  const uv = /UIDVALIDITY (\d+)/.exec(first[0].join('\n'))?.[1] ?? '0';
  return run(SCRIPT.map((c) => c.replace('{uv}', uv)));
}

describe.runIf(oracleAvailable)('the read-write IMAP front next to Dovecot (oracle), a command at a time', () => {
  const msgs = [1, 2, 3, 4].map((i) => Buffer.from(`Subject: m${i}\r\nMessage-ID: <m${i}@x>\r\n\r\nbody ${i}\r\n`));
  let server: { proc: ChildProcess; port: number };

  beforeAll(async () => {
    const dir = tmpDir();
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    for (const m of msgs) await s.ingest(m, { user: 'u' });
    await s.close();
    fs.writeFileSync(path.join(dir, 'passwd'), 'u:{PLAIN}pw\n');
    server = await startImap(dir, path.join(dir, 'passwd'));
  });

  afterAll(async () => {
    if (server) expect(await stop(server.proc)).toBe(0);
  });

  it('answers agree, command by command', async () => {
    // the first run only SELECTs (to learn UIDVALIDITY for QRESYNC): nothing changes before the script runs
    const oracle = new DovecotOracle(msgs, '');
    const dovecot = await runScript((cmds) => oracle.session(cmds));
    const mailcas = await runScript((cmds) => mailcasSession(server.port, cmds));
    const rows = SCRIPT.map((c, i) => ({ command: c, dovecot: normalise(dovecot[i]), mailcas: normalise(mailcas[i]) }));
    expect(rows.filter((r) => JSON.stringify(r.mailcas) !== JSON.stringify(r.dovecot))).toEqual([]);
    expect(rows.length).toBe(SCRIPT.length);
  });
});
