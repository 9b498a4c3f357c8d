import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { MailcasError } from '../../errors.js';
import { progressBar } from '../progress.js';
import { forEachLimit } from '../../util/pool.js';
import { makeDirsSync } from '../../util/dirs.js';
import { tempName } from '../../util/temp-files.js';
import { EXIT, out, withStore } from '../command-kit.js';
import { importCommand } from './import.js';

/** Commands on messages: ingest, import (import.ts), fetch, list, export, expunge. */
export function registerMessagesCommands(program: Command): void {
  ingestCommand(program);
  importCommand(program);
  fetchCommand(program);
  listCommand(program);
  exportCommand(program);
  expungeCommand(program);
}

function ingestCommand(program: Command): void {
  program
    .command('ingest')
    .addHelpText('after', '\nExamples:\n  $ mailcas ingest --user alice@example.org message.eml\n  $ mailcas ingest --user alice@example.org --mailbox Sent < message.eml')
    .description('store one message (from FILE or stdin) and print its id')
    .requiredOption('--user <user>', 'owner of the message (required)')
    .option('--mailbox <mailbox>', 'mailbox', 'INBOX')
    .argument('[file]', 'message file (default: stdin)')
    .action(async (file: string | undefined, o: { user: string; mailbox: string }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const input = file ? { path: file } : process.stdin;
        const r = await s.ingest(input, { user: o.user, mailbox: o.mailbox });
        out(r.id);
      }, { create: true });
    });
}

function fetchCommand(program: Command): void {
  program
    .command('fetch')
    .addHelpText('after', '\nExamples:\n  $ mailcas fetch --user alice@example.org 42 > 42.eml')
    .description('write the exact bytes of a message to stdout')
    .requiredOption('--user <user>', 'owner of the message (required)')
    .argument('<id>', 'message id')
    .action(async (id: string, o: { user: string }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        await pipeline(await s.fetch(id, { user: o.user }), process.stdout);
      }, { readOnly: true });
    });
}

function listCommand(program: Command): void {
  program
    .command('list')
    .addHelpText('after', '\nExamples:\n  $ mailcas list --user alice@example.org\n  $ mailcas list --user alice@example.org --mailbox Archive --json | jq .id')
    .description("list a user's messages (id, mailbox, size, received, subject, flags): from the metadata only")
    .requiredOption('--user <user>', 'owner of the messages (required)')
    .option('--mailbox <mailbox>', 'only this mailbox')
    .option('--json', 'one JSON object per message: id, mailbox, size, received, subject, from, date, messageId, flags')
    .action(async (o: { user: string; mailbox?: string; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        for (let after = 0; ; ) {
          const page = s.listPage(o.user, { mailbox: o.mailbox, after, limit: 1000 });
          for (const m of page) {
            if (o.json) out(JSON.stringify({ id: m.id, mailbox: m.mailbox, size: m.size, received: new Date(m.received).toISOString(), subject: m.subject, from: m.from, date: m.date, messageId: m.messageId, flags: m.flags }));
            else out(`${m.id}\t${m.mailbox}\t${m.size}\t${new Date(m.received).toISOString()}\t${(m.subject ?? '').replace(/[\t\r\n]+/g, ' ')}\t${m.flags.join(' ')}`);
          }
          if (page.length < 1000) break;
          after = Number(page[page.length - 1].id);
        }
      }, { readOnly: true });
    });
}

function exportCommand(program: Command): void {
  program
    .command('export')
    .addHelpText('after', '\nExamples:\n  $ mailcas export --user alice@example.org --out /tmp/alice --mailbox INBOX')
    .description('write every message of a user to DIR/<id>.eml')
    .requiredOption('--user <user>', 'owner of the messages (required)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--mailbox <mailbox>', 'only this mailbox')
    .action(async (o: { user: string; out: string; mailbox?: string }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory()) throw new MailcasError('E_USAGE', `--out ${o.out} exists and is not a directory`);
        makeDirsSync(o.out);
        const msgs = s.list(o.user, o.mailbox);
        const bar = progressBar('export', msgs.reduce((a, m) => a + m.size, 0));
        const failed: string[] = [];
        try {
          // on a remote backend many messages are read at once: the latency of each request overlaps the others
          await forEachLimit(msgs, s.blobStore.backend.properties.local ? 4 : 32, async (m) => {
            // each file is written under a temp name and renamed once all of it is verified and written:
            // a damaged message leaves no file, never a wrong one
            const file = path.join(o.out, `${m.id}.eml`);
            const tmp = path.join(o.out, `.${m.id}.eml.${tempName('export')}`);
            try {
              // small messages: one buffer, one write; large ones stream with bounded memory
              if (m.size <= SMALL_EXPORT) fs.writeFileSync(tmp, await s.fetchBuffer(m.id, { user: o.user }), { flag: 'wx' });
              else await pipeline(await s.fetch(m.id, { user: o.user }), fs.createWriteStream(tmp, { flags: 'wx' }));
              fs.renameSync(tmp, file);
            } catch (e) {
              fs.rmSync(tmp, { force: true });
              if (!(e instanceof MailcasError) || e.transient || e.code === 'E_STORE') throw e;
              failed.push(m.id);
              process.stderr.write(`mailcas: ${e.message}\n`);
            }
            bar.tick(m.size);
          });
        } finally {
          bar.stop();
        }
        process.stderr.write(`exported ${msgs.length - failed.length} messages to ${o.out}${failed.length ? `; ${failed.length} failed (${failed.slice(0, 10).join(' ')}${failed.length > 10 ? ' ...' : ''}): see mailcas check` : ''}\n`);
        if (failed.length) process.exitCode = EXIT.failure;
      }, { readOnly: true });
    });
}

function expungeCommand(program: Command): void {
  program
    .command('expunge')
    .addHelpText('after', '\nExamples:\n  $ mailcas expunge --user alice@example.org 42 43')
    .description('remove messages (their blobs are reclaimed by gc)')
    .requiredOption('--user <user>', 'owner of the messages (required)')
    .argument('<id...>', 'message ids')
    .action(async (ids: string[], o: { user: string }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const n = await s.expunge(o.user, ids);
        process.stderr.write(`expunged ${n} messages\n`);
      });
    });
}

/** Messages up to this size are exported through one buffer. */
const SMALL_EXPORT = 1024 * 1024;
