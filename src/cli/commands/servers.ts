import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Store } from '../../store.js';
import { MailcasError } from '../../errors.js';
import { DEFAULT_CONNECTIONS_PER_ADDRESS, DEFAULT_HTTP_MAX_CONNECTIONS, DEFAULT_MAX_JSON_BYTES } from '../../limits.js';
import { defaultLogger } from '../../util/logger.js';
import { maxMessageBytes, maxParts, parseHostPort, positiveInt, storeDir } from '../command-kit.js';
import { jsonLine, runUntilSignal } from '../serve-until-signal.js';

/** The reading fronts: serve (HTTP) and imap. */
export function registerServersCommands(program: Command): void {
  serveCommand(program);
  imapCommand(program);
}

function serveCommand(program: Command): void {
  program
    .command('serve')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas --store /var/lib/mailcas serve --listen 127.0.0.1:8080 --tokens /etc/mailcas/tokens\n  $ curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/users/u1/messages/42\n  $ curl -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8080/v1/users/u1/messages/42/fetch?items=(RFC822.SIZE%20BODYSTRUCTURE)"\n\nTokens file: lines "TOKEN USER[,USER...]" or "TOKEN *" (every user). Read-only; see the README for every route.\nOne JSON line per request on stderr with MAILCAS_LOG=1. SIGTERM: stops accepting, finishes what is in flight, exits 0.',
    )
    .description('serve the HTTP API an IMAP server or webmail calls: messages, FETCH items, sections, listings (read-only)')
    .requiredOption('--listen <host:port>', 'TCP address to listen on')
    .requiredOption('--tokens <file>', 'bearer tokens: lines "TOKEN USER[,USER...]" or "TOKEN *"')
    .option('--max-connections <n>', `connections at once`, (v) => positiveInt(v, '--max-connections'), DEFAULT_HTTP_MAX_CONNECTIONS)
    .option('--max-json-bytes <n>', `section bytes one JSON fetch answer may carry`, (v) => positiveInt(v, '--max-json-bytes'), DEFAULT_MAX_JSON_BYTES)
    .option('--max-connections-per-address <n>', 'connections one remote address may hold at once; more get 503', (v) => positiveInt(v, '--max-connections-per-address'), DEFAULT_CONNECTIONS_PER_ADDRESS)
    .action(async (o: { listen: string; tokens: string; maxConnections: number; maxJsonBytes: number; maxConnectionsPerAddress: number }, cmd: Command) => {
      const where = parseHostPort(o.listen);
      const { Tokens } = await import('../../service/tokens.js');
      const { HttpService } = await import('../../service/http-server.js');
      const tokens = Tokens.fromFile(o.tokens);
      if (!tokens.size) throw new MailcasError('E_USAGE', `the tokens file ${o.tokens} lists no token`);
      const s = await Store.open(storeDir(cmd), { create: false });
      const log = jsonLine;
      const svc = new HttpService(s, tokens, { log: defaultLogger(), maxConnections: o.maxConnections, maxJsonBytes: o.maxJsonBytes, maxPerAddress: o.maxConnectionsPerAddress });
      try {
        log({ event: 'serve-listening', on: await svc.listen(where), store: path.resolve(s.dir), tokens: tokens.size });
      } catch (e) {
        await s.close();
        throw e;
      }
      await runUntilSignal('serve', async () => {
        await svc.close();
        await s.close();
      });
    });
}

function imapCommand(program: Command): void {
  program
    .command('imap')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas --store /var/lib/mailcas imap --listen 127.0.0.1:143 --passwd /etc/mailcas/passwd\n  $ mailcas imap --listen 127.0.0.1:1143 --passwd users.txt\n\nPassword file: lines "user:password", the password plain or {SHA512-CRYPT}$6$..., {SHA256-CRYPT}, {SSHA512}, {PLAIN}.\n  $ mailcas imap --listen 0.0.0.0:143 --imaps-listen 0.0.0.0:993 --tls-cert /etc/ssl/mail.pem --tls-key /etc/ssl/mail.key --passwd users.txt\n\nRead-write: flags, APPEND, COPY/MOVE, EXPUNGE, IDLE, CONDSTORE/QRESYNC.\nLogins from other hosts need TLS (STARTTLS or the IMAPS port) unless --allow-plaintext; on loopback they do not.\nSIGTERM: says BYE to every session and exits 0.',
    )
    .description('serve an IMAP4rev1 front over the store for mail clients (read-write: flags, APPEND, COPY/MOVE, EXPUNGE, IDLE)')
    .requiredOption('--listen <host:port>', 'TCP address to listen on')
    .requiredOption('--passwd <file>', 'users and passwords: lines "user:password" ({SCHEME} hashes as Dovecot writes them)')
    .option('--max-sessions <n>', 'sessions at once', (v) => positiveInt(v, '--max-sessions'), 1000)
    .option('--max-connections-per-address <n>', 'sessions one remote address may hold at once; more get BYE', (v) => positiveInt(v, '--max-connections-per-address'), DEFAULT_CONNECTIONS_PER_ADDRESS)
    .option('--login-timeout <seconds>', 'time to log in before BYE', (v) => positiveInt(v, '--login-timeout'), 60)
    .option('--idle-timeout <seconds>', 'a logged-in session idle this long gets BYE (RFC 3501: at least 30 minutes)', (v) => positiveInt(v, '--idle-timeout'), 1800)
    .option('--tls-cert <file>', 'certificate (PEM, with its chain): STARTTLS on --listen, and --imaps-listen')
    .option('--tls-key <file>', "the certificate's private key (PEM)")
    .option('--imaps-listen <host:port>', 'also listen for IMAPS (TLS from the first byte; needs --tls-cert and --tls-key)')
    .option('--allow-plaintext', 'let clients on other hosts log in without TLS (default: refused with LOGINDISABLED)')
    .action(async (o: { listen: string; passwd: string; maxSessions: number; maxConnectionsPerAddress: number; loginTimeout: number; idleTimeout: number; tlsCert?: string; tlsKey?: string; imapsListen?: string; allowPlaintext?: boolean }, cmd: Command) => {
      const where = parseHostPort(o.listen);
      if (!o.tlsCert !== !o.tlsKey) throw new MailcasError('E_USAGE', '--tls-cert and --tls-key go together');
      if (o.imapsListen && !o.tlsCert) throw new MailcasError('E_USAGE', '--imaps-listen needs --tls-cert and --tls-key');
      const tlsFiles = o.tlsCert && o.tlsKey ? { cert: readInput(o.tlsCert, '--tls-cert'), key: readInput(o.tlsKey, '--tls-key') } : undefined;
      const { PasswordFile } = await import('../../imap/passwd.js');
      const { ImapService } = await import('../../imap/imap-server.js');
      const passwd = PasswordFile.fromFile(o.passwd);
      for (const w of passwd.warnings) process.stderr.write(`mailcas: ${w}\n`);
      if (!passwd.size) throw new MailcasError('E_USAGE', `the password file ${o.passwd} lists no user${passwd.warnings.length ? ' with a password' : ''}`);
      const s = await Store.open(storeDir(cmd), { create: false, maxMessageBytes: maxMessageBytes(cmd), maxParts: maxParts(cmd) });
      const log = jsonLine;
      const svc = new ImapService(s, { passwd, log: defaultLogger(), maxSessions: o.maxSessions, maxPerAddress: o.maxConnectionsPerAddress, loginMs: o.loginTimeout * 1000, idleMs: o.idleTimeout * 1000, tls: tlsFiles, allowPlaintext: !!o.allowPlaintext });
      try {
        const imaps = o.imapsListen ? await svc.listenTls(parseHostPort(o.imapsListen)) : undefined;
        log({ event: 'imap-listening', on: await svc.listen(where), ...(imaps ? { imaps } : {}), starttls: !!tlsFiles, store: path.resolve(s.dir), users: passwd.size });
      } catch (e) {
        await s.close();
        throw e;
      }
      await runUntilSignal('imap', async () => {
        await svc.close();
        await s.close();
      });
    });
}

/** A file an option names, read whole (a certificate, a key), or E_SOURCE naming the option. */
function readInput(file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new MailcasError('E_SOURCE', `${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
