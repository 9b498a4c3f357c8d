import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { Store } from '../../store.js';
import { MailcasError } from '../../errors.js';
import { sqliteError } from '../../meta/db.js';
import { DEFAULT_LMTP_LIMITS, DEFAULT_MAX_RECIPIENTS, MAX_MIME_DEPTH } from '../../limits.js';
import { loadUserMap, mapRecipient } from '../../delivery/recipients.js';
import { exitFor } from '../../delivery/replies.js';
import { withDeliveryHeaders } from '../../delivery/delivery-headers.js';
import type { LmtpService } from '../../delivery/lmtp-server.js';
import { EXIT, maxMessageBytes, maxParts, parseHostPort, positiveInt, storeDir, withStore } from '../command-kit.js';
import { jsonLine, runUntilSignal } from '../serve-until-signal.js';

/** Delivery from an MTA: deliver (an LDA, a process per message) and lmtp (a server). */
export function registerDeliveryCommands(program: Command): void {
  deliverCommand(program);
  lmtpCommand(program);
}

function deliverCommand(program: Command): void {
  program
    .command('deliver')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas deliver --user alice < message.eml\n  $ mailcas --store /var/lib/mailcas deliver --user "$USER" --from "$SENDER"          # Postfix mailbox_command\n  $ mailcas deliver --users /etc/mailcas/users --user ${recipient} --from ${sender} # Postfix pipe(8)\n\nExit codes (sysexits, as MTAs expect): 0 delivered, 65 refused (over a limit, empty), 67 unknown user (with --users),\n74 store unusable, 75 temporary (store busy, backend down, disk full): the MTA retries.',
    )
    .description('deliver one message from stdin (a local delivery agent for an MTA)')
    .requiredOption('--user <user>', 'recipient: a user name, or an address (mapped with --users / --user-format / --recipient-delimiter) (required)')
    .option('--mailbox <mailbox>', 'mailbox (default: the address detail with --recipient-delimiter, else INBOX)')
    .option('--from <sender>', 'envelope sender (for --add-headers)')
    .option('--users <file>', 'user map, lines "address user [mailbox]": other recipients are unknown (exit 67)')
    .addOption(new Option('--user-format <format>', 'with an address as --user: the local part or the whole address').choices(['local', 'address']))
    .option('--recipient-delimiter <c>', 'e.g. +: user+lists goes to mailbox lists')
    .option('--add-headers', 'prepend Return-Path and Delivered-To (default: store exactly the bytes given)')
    .action(async (o: { user: string; mailbox?: string; from?: string; users?: string; userFormat?: 'local' | 'address'; recipientDelimiter?: string; addHeaders?: boolean }, cmd: Command) => {
      try {
        const mapped = o.users || o.userFormat || o.recipientDelimiter ? mapRecipient(o.user, { users: o.users ? loadUserMap(o.users) : undefined, userFormat: o.userFormat, delimiter: o.recipientDelimiter }) : { user: o.user, mailbox: 'INBOX' };
        if (!mapped) {
          process.stderr.write(`mailcas: ${o.user}: unknown user\n`);
          process.exitCode = EXIT.noUser;
          return;
        }
        await withStore(cmd, async (s) => {
          const input: AsyncIterable<Buffer> = o.addHeaders ? withDeliveryHeaders(process.stdin, o.from ?? '', o.user) : process.stdin;
          await s.ingest(input, { user: mapped.user, mailbox: o.mailbox ?? mapped.mailbox });
        }, { create: true });
      } catch (e) {
        process.stderr.write(`mailcas: ${(sqliteError(e) as Error).message.split('\n')[0]}\n`);
        process.exitCode = deliveryExit(sqliteError(e));
      }
    });
}

function lmtpCommand(program: Command): void {
  program
    .command('lmtp')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas --store /var/lib/mailcas lmtp --listen 127.0.0.1:24\n  $ mailcas lmtp --socket /run/mailcas/lmtp --user-format address --recipient-delimiter +\n  $ mailcas lmtp --listen 127.0.0.1:2424 --users /etc/mailcas/users\n\nOne JSON line per delivery on stderr. SIGTERM: stops accepting, finishes what is in flight, exits 0.',
    )
    .description('serve LMTP (RFC 2033) for an MTA: one copy of each message for all its recipients')
    .option('--listen <host:port>', 'TCP address to listen on')
    .option('--socket <path>', 'Unix socket to listen on')
    .option('--users <file>', 'user map, lines "address user [mailbox]": other recipients get 550')
    .addOption(new Option('--user-format <format>', 'user from the local part (u1@example.org -> u1) or the whole address').choices(['local', 'address']).default('local'))
    .option('--recipient-delimiter <c>', 'e.g. +: u1+lists@... goes to user u1, mailbox lists')
    .option('--max-recipients <n>', `recipients per transaction`, (v) => positiveInt(v, '--max-recipients'), DEFAULT_MAX_RECIPIENTS)
    .option('--max-line-bytes <n>', `longest line accepted`, (v) => positiveInt(v, '--max-line-bytes'), DEFAULT_LMTP_LIMITS.maxLineBytes)
    .option('--max-header-bytes <n>', `largest header block accepted`, (v) => positiveInt(v, '--max-header-bytes'), DEFAULT_LMTP_LIMITS.maxHeaderBytes)
    .option('--max-mime-depth <n>', `deepest MIME nesting accepted`, (v) => positiveInt(v, '--max-mime-depth'), MAX_MIME_DEPTH)
    .option('--add-headers', 'prepend Return-Path (and Delivered-To for a single recipient); default: store exactly the DATA bytes')
    .option('--idle-timeout <seconds>', 'close a session idle this long with 421', (v) => positiveInt(v, '--idle-timeout'), 300)
    .option('--max-sessions <n>', 'sessions at once, more get 421', (v) => positiveInt(v, '--max-sessions'), 1000)
    .action(
      async (
        o: { listen?: string; socket?: string; users?: string; userFormat: 'local' | 'address'; recipientDelimiter?: string; maxRecipients: number; maxLineBytes: number; maxHeaderBytes: number; maxMimeDepth: number; addHeaders?: boolean; idleTimeout: number; maxSessions: number },
        cmd: Command,
      ) => {
        if (!o.listen && !o.socket) throw new MailcasError('E_USAGE', 'lmtp needs --listen HOST:PORT and/or --socket PATH');
        const where = o.listen ? parseHostPort(o.listen) : null;
        const rules = { users: o.users ? loadUserMap(o.users) : undefined, userFormat: o.userFormat, delimiter: o.recipientDelimiter };
        const { LmtpService } = await import('../../delivery/lmtp-server.js');
        const s = await Store.open(storeDir(cmd), { maxMessageBytes: maxMessageBytes(cmd), maxParts: maxParts(cmd), maxDepth: o.maxMimeDepth, background: true });
        const log = jsonLine;
        const services: LmtpService[] = [];
        try {
          for (const w of [...(where ? [where] : []), ...(o.socket ? [{ socket: o.socket }] : [])]) {
            const svc = new LmtpService(s, { rules, maxRecipients: o.maxRecipients, maxMessageBytes: s.config.maxMessageBytes, limits: { maxLineBytes: o.maxLineBytes, maxHeaderBytes: o.maxHeaderBytes }, addHeaders: o.addHeaders, log, idleTimeoutMs: o.idleTimeout * 1000, maxSessions: o.maxSessions });
            services.push(svc);
            log({ event: 'lmtp-listening', on: await svc.listen(w), store: path.resolve(s.dir) });
          }
        } catch (e) {
          await Promise.all(services.map((v) => v.close()));
          await s.close();
          throw e;
        }
        await runUntilSignal('lmtp', async () => {
          await Promise.all(services.map((v) => v.close()));
          await s.close();
        });
      },
    );
}


/** deliver's exit code: sysexits as MTAs read them; never one that bounces mail for our own fault. */
function deliveryExit(e: unknown): number {
  if (e instanceof CommanderError) return EXIT.usage;
  return exitFor(e);
}
