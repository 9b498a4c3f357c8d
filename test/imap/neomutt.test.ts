// neomutt, a real mail client, driven through tmux against mailcas imap (issue 23): open INBOX, read a
// message, flag it, delete one, save one to another folder, sync, quit; the store then holds exactly
// what the user did (flags, the expunges, the saved copy byte-identical, reference counts exact).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { tmpDir } from '../helpers.js';
import { startImap, stop } from './start-imap.js';

const SOCKET = `mailcas-neomutt-${process.pid}`;
const tmux = (...args: string[]) => spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const screen = (): string => tmux('capture-pane', '-t', 'nm', '-p').stdout;

async function waitFor(re: RegExp, what: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const s = screen();
    if (re.test(s)) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`neomutt: waited for ${what}; the screen:\n${screen()}`);
}

async function keys(...k: string[]): Promise<void> {
  tmux('send-keys', '-t', 'nm', ...k);
  await new Promise((r) => setTimeout(r, 300));
}

describe('neomutt in tmux', () => {
  const dir = tmpDir();
  const home = tmpDir();
  const msgs = [1, 2, 3].map((i) => Buffer.from(`From: a${i}@example.org\r\nTo: u@example.org\r\nSubject: message ${i}\r\nMessage-ID: <m${i}@x>\r\nDate: Mon, 7 Dec 2026 10:0${i}:00 +0000\r\n\r\nbody ${i}\r\n`));
  const ids: string[] = [];
  let server: { proc: ChildProcess; port: number };

  beforeAll(async () => {
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    for (const m of msgs) ids.push((await s.ingest(m, { user: 'u' })).id);
    await s.mail.create('u', 'Saved');
    await s.close();
    fs.writeFileSync(path.join(home, 'passwd'), 'u:{PLAIN}pw\n');
    server = await startImap(dir, path.join(home, 'passwd'));
  });

  afterAll(async () => {
    tmux('kill-server');
    if (server) expect(await stop(server.proc)).toBe(0);
  });

  it('open, read, flag, delete, save to another folder, sync, quit', async () => {
    const rc = path.join(home, 'muttrc');
    fs.writeFileSync(
      rc,
      [
        `set folder="imap://u@127.0.0.1:${server.port}/"`,
        'set spoolfile="+INBOX"',
        'set imap_user="u"',
        'set imap_pass="pw"',
        'set ssl_starttls=no',
        'set ssl_force_tls=no',
        'set confirmappend=no',
        'set delete=yes',
        'set move=no',
        'set mark_old=no',
        'set record=""',
        'set header_cache=""',
        'set message_cachedir=""',
        'set sort=date',
        'unset wait_key',
        '',
      ].join('\n'),
    );
    const started = tmux('new-session', '-d', '-s', 'nm', '-x', '120', '-y', '40', `env HOME=${home} TERM=xterm neomutt -n -F ${rc}`);
    expect(started.status, started.stderr).toBe(0);
    await waitFor(/message 3/, 'the index');
    await keys('Enter'); // read message 1
    await waitFor(/body 1/, 'the pager');
    await keys('q');
    await keys('F'); // flag message 1 (the cursor moves on to message 2)
    await keys('d'); // delete message 2 (on to message 3)
    await keys('s'); // save message 3 to another folder
    await waitFor(/Save to mailbox/, 'the save prompt');
    await keys('C-u', '=Saved', 'Enter');
    await waitFor(/Del:2/, 'message 3 saved and marked deleted');
    await keys('$'); // sync: the deleted ones are expunged
    await waitFor(/Msgs:1 /, 'the synced mailbox');
    await keys('q');
    for (let i = 0; i < 50 && tmux('has-session', '-t', 'nm').status === 0; i++) await new Promise((r) => setTimeout(r, 100));

    const s = await Store.open(dir, { logger: silentLogger, workers: 0 });
    const inbox = s.list('u', 'INBOX');
    expect(inbox.map((m) => [m.id, m.flags])).toEqual([[ids[0], ['\\Seen', '\\Flagged']]]);
    const saved = s.list('u', 'Saved');
    expect(saved.length).toBe(1);
    expect((await s.fetchBuffer(saved[0].id)).equals(msgs[2])).toBe(true);
    expect(await s.check()).toMatchObject({ consistent: true, drift: [], missingBlobs: [] });
    await s.close();
  });
});
