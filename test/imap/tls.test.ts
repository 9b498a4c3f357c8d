// mailcas imap with TLS (issue 23): IMAPS and STARTTLS with a certificate given by flags, spoken to by
// imapflow and Python's imaplib; logins in clear from another host refused (LOGINDISABLED,
// PRIVACYREQUIRED) unless --allow-plaintext; commands pipelined behind STARTTLS never run.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImapFlow } from 'imapflow';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { BIN, tmpDir } from '../helpers.js';
import { stop } from './start-imap.js';

/** This host's first address that is not loopback (a login from it crosses the network as far as the server can tell). */
const external = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

async function start(store: string, args: string[]): Promise<{ proc: ChildProcess; port: number; imaps: number | null }> {
  const proc = spawn(process.execPath, [BIN, '--store', store, 'imap', '--listen', '0.0.0.0:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d) => (log += d));
  for (let i = 0; i < 200 && !log.includes('imap-listening'); i++) await new Promise((r) => setTimeout(r, 50));
  const on = /"on":"[^"]*:(\d+)"/.exec(log)?.[1];
  if (!on) throw new Error(`imap did not start: ${log}`);
  const imaps = /"imaps":"[^"]*:(\d+)"/.exec(log)?.[1];
  return { proc, port: Number(on), imaps: imaps ? Number(imaps) : null };
}

/** A line-at-a-time conversation over a socket (plain or TLS). */
function talker(sock: net.Socket | tls.TLSSocket) {
  let buf = '';
  const waiters: (() => void)[] = [];
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    waiters.splice(0).forEach((w) => w());
  });
  return {
    async until(tag: string): Promise<string> {
      for (;;) {
        const m = new RegExp(`(^|\\r\\n)${tag} [^\\r\\n]*\\r\\n`).exec(buf);
        if (m) {
          const out = buf.slice(0, m.index + m[0].length);
          buf = buf.slice(m.index + m[0].length);
          return out;
        }
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    rest: () => buf,
  };
}

describe('mailcas imap over TLS', () => {
  const dir = tmpDir();
  const keys = tmpDir();
  const passwd = path.join(keys, 'passwd');
  const cert = path.join(keys, 'cert.pem');
  const key = path.join(keys, 'key.pem');
  const message = Buffer.from('Subject: over TLS\r\n\r\nsecret body\r\n');
  let server: { proc: ChildProcess; port: number; imaps: number | null };

  beforeAll(async () => {
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], { encoding: 'utf8' });
    expect(gen.status, gen.stderr).toBe(0);
    const s = await Store.init(dir, { logger: silentLogger, workers: 0 });
    await s.ingest(message, { user: 't' });
    await s.close();
    fs.writeFileSync(passwd, 't:{PLAIN}pw\n');
    server = await start(dir, ['--passwd', passwd, '--tls-cert', cert, '--tls-key', key, '--imaps-listen', '127.0.0.1:0']);
  });

  afterAll(async () => {
    if (server) expect(await stop(server.proc)).toBe(0);
  });

  it('imapflow over IMAPS, and over STARTTLS: log in, read the message byte-exact', async () => {
    for (const how of [
      { port: server.imaps!, secure: true },
      { port: server.port, secure: false, doSTARTTLS: true },
    ]) {
      const c = new ImapFlow({ host: '127.0.0.1', ...how, tls: { rejectUnauthorized: false }, auth: { user: 't', pass: 'pw' }, logger: false });
      await c.connect();
      expect((c as unknown as { secureConnection: boolean }).secureConnection, JSON.stringify(how)).toBe(true);
      const lock = await c.getMailboxLock('INBOX');
      const m = await c.fetchOne('1', { source: true });
      expect(m && m.source!.equals(message)).toBe(true);
      lock.release();
      await c.logout();
    }
  });

  it("Python's imaplib: STARTTLS then LOGIN", () => {
    const script = `import imaplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = imaplib.IMAP4('127.0.0.1', ${server.port})
print('STARTTLS' in c.capabilities)
c.starttls(ssl_context=ctx)
print(c.login('t', 'pw')[0])
c.select('INBOX')
print(c.fetch('1', '(BODY.PEEK[])')[1][0][1] == open(sys.argv[1], 'rb').read())
c.logout()`;
    const f = path.join(keys, 'm.eml');
    fs.writeFileSync(f, message);
    const r = spawnSync('python3', ['-c', script, f], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['True', 'OK', 'True']);
  });

  it('commands sent in clear behind STARTTLS are dropped, never run after the handshake', async () => {
    const raw = net.connect(server.port, '127.0.0.1');
    await new Promise((r) => raw.once('connect', r));
    const t = talker(raw);
    await t.until('\\*');
    // the injection: a command pipelined in clear behind STARTTLS
    raw.write('a STARTTLS\r\nb LOGIN t pw\r\nc SELECT INBOX\r\n');
    expect(await t.until('a')).toMatch(/a OK/);
    raw.removeAllListeners('data');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false });
    await new Promise((r) => secure.once('secureConnect', r));
    const st = talker(secure);
    secure.write('d CAPABILITY\r\n');
    const got = await st.until('d');
    expect(got).not.toMatch(/^b |^c |\r\nb |\r\nc /);
    expect(got).toMatch(/d OK/);
    // and the session is still not logged in: SELECT needs a login first
    secure.write('e SELECT INBOX\r\n');
    expect(await st.until('e')).toMatch(/e BAD log in first/);
    secure.end();
  });

  it.runIf(!!external)('from another host: LOGINDISABLED and PRIVACYREQUIRED in clear, a login after STARTTLS; --allow-plaintext lets it in', async () => {
    const talk = async (port: number, lines: string[]): Promise<string> => {
      const raw = net.connect({ port, host: external!, localAddress: external! });
      await new Promise((r) => raw.once('connect', r));
      const t = talker(raw);
      let out = await t.until('\\*');
      for (const [i, l] of lines.entries()) {
        raw.write(`x${i} ${l}\r\n`);
        out += await t.until(`x${i}`);
      }
      raw.end();
      return out;
    };
    const out = await talk(server.port, ['CAPABILITY', 'LOGIN t pw', 'AUTHENTICATE PLAIN dAB0AHB3']);
    expect(out).toMatch(/\* CAPABILITY [^\r]*LOGINDISABLED/);
    expect(out).toMatch(/\* CAPABILITY [^\r]*STARTTLS/);
    expect(out).not.toMatch(/\* CAPABILITY [^\r]*AUTH=PLAIN/);
    expect(out).toMatch(/x1 NO \[PRIVACYREQUIRED\]/);
    expect(out).toMatch(/x2 NO \[PRIVACYREQUIRED\]/);
    // after STARTTLS, from the same host, the login goes through
    const c = new ImapFlow({ host: external!, port: server.port, secure: false, doSTARTTLS: true, tls: { rejectUnauthorized: false }, auth: { user: 't', pass: 'pw' }, logger: false });
    await c.connect();
    expect((await c.status('INBOX', { messages: true })).messages).toBe(1);
    await c.logout();
    const open = await start(dir, ['--passwd', passwd, '--allow-plaintext']);
    try {
      expect(await talk(open.port, ['LOGIN t pw'])).toMatch(/x0 OK/);
    } finally {
      await stop(open.proc);
    }
  });
});
