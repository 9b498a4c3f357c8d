// Postfix from Debian's packages delivering to mailcas end to end, three ways: LMTP (one
// transaction for all recipients of a domain), pipe(8) running `mailcas deliver`, and local(8)'s
// mailbox_command running `mailcas deliver`: the two Postfix snippets the README documents.
// A throw-away instance with its own config, queue and log directories on loopback (see
// shared docs: POSTFIX-LMTP.md). Needs root (Postfix's own users and chroot) and the postfix package.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { LmtpService } from '../../src/delivery/lmtp-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { installedForOthers, whyNobodyCannotRun } from '../helpers.js';
import { messageWith } from '../mailgen.js';

const POSTFIX = '/usr/sbin/postfix';
const canRun = process.getuid?.() === 0 && fs.existsSync(POSTFIX);
/** Fixed: Postfix accepts `-c DIR` only for a directory that /etc/postfix/main.cf lists. */
const BASE = '/tmp/mailcas-postfix-test';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function postfix(...args: string[]): string {
  return execFileSync(POSTFIX, ['-c', path.join(BASE, 'etc'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The mailcas command line Postfix runs as its delivery user: node and a copy of the package that user can reach (the checkout may be in a directory only its owner can enter). */
const mailcas = (store: string): string => `${process.execPath} ${installedForOthers().bin} --store ${store}`;

describe.runIf(canRun)('Postfix delivering to mailcas', () => {
  let smtpPort = 0;
  let lmtpStore: Store;
  let lmtp: LmtpService;
  const nobodyStores = path.join(BASE, 'stores'); // written by `nobody`: pipe(8) and local(8) never run commands as root

  beforeAll(async () => {
    const why = whyNobodyCannotRun(installedForOthers().bin);
    if (why) throw new Error(why);
    spawnSync(POSTFIX, ['-c', path.join(BASE, 'etc'), 'stop'], { stdio: 'ignore' });
    fs.rmSync(BASE, { recursive: true, force: true });
    for (const d of ['etc', 'queue', 'data', 'stores']) fs.mkdirSync(path.join(BASE, d), { recursive: true });
    fs.chmodSync(nobodyStores, 0o777);
    execFileSync('chown', ['postfix', path.join(BASE, 'data')]);
    const main = fs.existsSync('/etc/postfix/main.cf') ? fs.readFileSync('/etc/postfix/main.cf', 'utf8') : '';
    if (!main.includes(path.join(BASE, 'etc'))) {
      fs.writeFileSync('/etc/postfix/main.cf', `${main.includes('compatibility_level') ? '' : 'compatibility_level = 3.6\n'}${main.replace(/^alternate_config_directories.*$/m, '')}\nalternate_config_directories = ${path.join(BASE, 'etc')}\n`);
    }
    smtpPort = await freePort();
    lmtpStore = await Store.open(path.join(BASE, 'lmtp-store'), { logger: silentLogger });
    lmtp = new LmtpService(lmtpStore, { maxMessageBytes: lmtpStore.config.maxMessageBytes });
    const lmtpOn = await lmtp.listen({ host: '127.0.0.1', port: 0 });
    fs.writeFileSync(
      path.join(BASE, 'etc', 'main.cf'),
      `compatibility_level = 3.6
queue_directory = ${BASE}/queue
data_directory = ${BASE}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.invalid
mydestination = local.test
relay_domains = lmtp.test, pipe.test
relay_recipient_maps =
mynetworks = 127.0.0.0/8
inet_interfaces = loopback-only
inet_protocols = ipv4
transport_maps = inline:{ lmtp.test=lmtp:inet:${lmtpOn}, pipe.test=mailcas: }
mailcas_destination_recipient_limit = 1
local_recipient_maps =
alias_maps =
alias_database =
mailbox_command = ${mailcas(path.join(nobodyStores, 'local'))} deliver --user "$USER" --from "$SENDER"
maillog_file = ${BASE}/maillog
maillog_file_prefixes = /tmp
biff = no
smtputf8_enable = no
`,
    );
    let master = fs.readFileSync('/etc/postfix/master.cf', 'utf8').replace(/^smtp(\s+inet\s)/m, `127.0.0.1:${smtpPort}$1`);
    if (!/^postlog\s/m.test(master)) master += 'postlog   unix-dgram n  -       n       -       1       postlogd\n';
    master += `mailcas   unix  -       n       n       -       -       pipe\n  flags=q user=nobody argv=${mailcas(path.join(nobodyStores, 'pipe'))} deliver --user \${user} --from \${sender}\n`;
    fs.writeFileSync(path.join(BASE, 'etc', 'master.cf'), master);
    postfix('start');
  });

  afterAll(async () => {
    spawnSync(POSTFIX, ['-c', path.join(BASE, 'etc'), 'stop'], { stdio: 'ignore' });
    await lmtp?.close();
    await lmtpStore?.close();
  });

  it('SMTP in; LMTP, pipe(8) and mailbox_command out; every copy the injected message byte for byte under the Received header Postfix adds', async () => {
    const injected = messageWith(crypto.randomBytes(40_000), { subject: 'through postfix' });
    const withIds = Buffer.concat([Buffer.from('Message-ID: <t1@example.com>\r\nDate: Tue, 01 Dec 2026 00:00:00 +0000\r\n'), injected]);
    const send = spawnSync(
      'python3',
      ['-c', `import smtplib,sys; s=smtplib.SMTP('127.0.0.1', ${smtpPort}); s.sendmail('sender@example.com', ['a@lmtp.test','b@lmtp.test','c@pipe.test','nobody@local.test'], sys.stdin.buffer.read()); s.quit()`],
      { input: withIds },
    );
    expect(send.status, send.stderr.toString()).toBe(0);
    const log = path.join(BASE, 'maillog');
    for (let i = 0; i < 150; i++) {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      if ((text.match(/status=sent/g) ?? []).length >= 4 || /status=(bounced|deferred)/.test(text)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const text = fs.readFileSync(log, 'utf8');
    expect(text, text).not.toMatch(/status=(bounced|deferred)/);
    expect((text.match(/status=sent/g) ?? []).length, text).toBe(4);

    // LMTP: CRLF as on the wire; one transaction for both recipients of lmtp.test
    const onWire = (b: Buffer) => b.toString('latin1');
    for (const u of ['a', 'b']) {
      const [m] = lmtpStore.list(u);
      const got = onWire(await lmtpStore.fetchBuffer(m.id));
      expect(got.endsWith(onWire(withIds))).toBe(true);
      expect(got.slice(0, got.length - withIds.length)).toMatch(/^Received: from [^]*\r\n$/);
    }
    expect((lmtpStore.db.prepare('SELECT count(DISTINCT hash) AS n FROM messages').get() as { n: number }).n).toBe(1);
    // pipe(8) and local(8) hand commands the message with LF line endings (the queue file's form)
    const asLf = onWire(withIds).replace(/\r\n/g, '\n');
    for (const [store, user] of [
      ['pipe', 'c'],
      ['local', 'nobody'],
    ]) {
      const s = await Store.open(path.join(nobodyStores, store), { logger: silentLogger });
      const [m] = s.list(user);
      expect(m, `${store}: ${user}`).toBeDefined();
      const got = onWire(await s.fetchBuffer(m.id));
      expect(got.endsWith(asLf)).toBe(true);
      expect(got.slice(0, got.length - asLf.length)).toMatch(/Received: from [^]*\n$/);
      await s.close();
    }
  });
});
