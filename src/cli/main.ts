#!/usr/bin/env node
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Command, CommanderError, Option } from 'commander';
import { Store } from '../store.js';
import { MailcasError } from '../errors.js';
import { checkPaths, expandSources, totalSize, type ImportFormat } from '../importer/sources.js';
import { progressBar, progressWanted } from './progress.js';
import { forEachLimit } from '../util/pool.js';
import { formatReport } from '../report/format.js';
import { makeDirsSync } from '../util/dirs.js';
import { tempName } from '../util/temp-files.js';
import { sqliteError } from '../meta/db.js';
import { parseS3Url } from '../backend/s3-backend.js';
import { describeBackend } from '../backend/open-backend.js';
import { DEFAULT_COLLECT_GRACE_SECONDS, DEFAULT_CONNECTIONS_PER_ADDRESS, DEFAULT_HTTP_MAX_CONNECTIONS, DEFAULT_LMTP_LIMITS, DEFAULT_MAX_JSON_BYTES, DEFAULT_MAX_PARTS, DEFAULT_MAX_RECIPIENTS, MAX_MIME_DEPTH } from '../limits.js';
import { loadUserMap, mapRecipient } from '../delivery/recipients.js';
import { exitFor } from '../delivery/replies.js';
import { deliveryHeaders } from '../delivery/delivery-headers.js';
import type { LmtpService } from '../delivery/lmtp-server.js';
import { loads, parseNodes, planMoves } from '../cluster/placement.js';
import { applyConfig, findConfigFile, parseConfigFile, validateConfig } from './config-file.js';
import { defaultLogger } from '../util/logger.js';
import { readOperatorFile } from '../util/operator-file.js';

/** Exit codes (sysexits.h where one fits). */
export const EXIT = { ok: 0, failure: 1, usage: 64, dataErr: 65, noInput: 66, noUser: 67, software: 70, ioErr: 74, tempFail: 75 } as const;

/** Messages up to this size are exported through one buffer. */
const SMALL_EXPORT = 1024 * 1024;

function storeDir(cmd: Command): string {
  const o = cmd.optsWithGlobals() as { store?: string };
  return o.store || process.env.MAILCAS_STORE || './mailcas-data';
}

function maxMessageBytes(cmd: Command): number | undefined {
  const o = cmd.optsWithGlobals() as { maxMessageBytes?: string };
  const v = o.maxMessageBytes ?? process.env.MAILCAS_MAX_MESSAGE_BYTES;
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new MailcasError('E_USAGE', `--max-message-bytes needs a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function maxParts(cmd: Command): number | undefined {
  const o = cmd.optsWithGlobals() as { maxParts?: string };
  const v = o.maxParts ?? process.env.MAILCAS_MAX_PARTS;
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new MailcasError('E_USAGE', `--max-parts needs a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Opens the store for one command. Worker threads only for commands that
 * prepare many messages at once (import, the LMTP server): a command that
 * stores one message has no other work to keep responsive and no use for them.
 */
async function withStore<T>(cmd: Command, fn: (s: Store) => Promise<T>, opts: { workers?: boolean } = {}): Promise<T> {
  const s = await Store.open(storeDir(cmd), { maxMessageBytes: maxMessageBytes(cmd), maxParts: maxParts(cmd), workers: opts.workers ? undefined : 0 });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const out = (s: string): void => {
  process.stdout.write(s + '\n');
};

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('mailcas')
    .description('Deduplicating MIME-splitting blob store for mail: byte-exact, content-addressed')
    .option('--store <dir>', 'store directory (default: $MAILCAS_STORE, else ./mailcas-data)')
    .option('--max-message-bytes <n>', 'refuse messages larger than this (default 536870912, or $MAILCAS_MAX_MESSAGE_BYTES)')
    .option('--max-parts <n>', `refuse messages with more MIME parts than this (default ${DEFAULT_MAX_PARTS}, or $MAILCAS_MAX_PARTS)`)
    .option('--debug', 'print the stack trace of an internal error (also $MAILCAS_DEBUG=1)')
    .option('--config <file>', 'defaults for any option, per command (default: $MAILCAS_CONFIG, else /etc/mailcas/mailcas.conf if present; see the README)')
    .version(version(), '-V, --version', 'print the version')
    .addHelpText(
      'after',
      `
Examples:
  $ mailcas --store /var/lib/mailcas import --user alice@example.org ~alice/Maildir
  $ mailcas --store /var/lib/mailcas fetch --user alice@example.org 42 > 42.eml
  $ mailcas --store /var/lib/mailcas report

Exit codes: 0 ok, 1 inconsistent or damaged, 64 usage, 65 refused input, 66 no such message or path,
70 internal error, 74 store unusable, 75 temporary failure (retry later).`,
    )
    // usage errors: one line on stderr, like every other error (subcommands inherit this)
    .configureOutput({ outputError: (str, write) => write(`mailcas: ${str.replace(/^error: /, '').trimEnd()} (see mailcas --help)\n`) })
    .exitOverride();

  program
    .command('init')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas --store /var/lib/mailcas init\n  $ mailcas --store /var/lib/mailcas init --s3 s3://mail-blobs/eu1 --s3-endpoint http://ceph-rgw:7480\n  $ mailcas --store /srv/node2 init --s3 s3://mail-blobs/cluster1 --s3-endpoint http://ceph-rgw:7480 --node node2\n\nCredentials come from the standard AWS variables and files (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials), never from the store.',
    )
    .description('create a store (its blobs on files, or in an S3 bucket, created when missing); later commands use it as created')
    .option('--s3 <url>', 'keep blobs in s3://BUCKET[/PREFIX]')
    .option('--s3-endpoint <url>', 'S3 endpoint (default: AWS)')
    .option('--s3-region <region>', 'region (default: $AWS_REGION, else us-east-1)')
    .option('--s3-path-style', 'path-style requests (default with --s3-endpoint)')
    .option('--tiered', 'new blobs on local files, moved to S3 by mailcas tier')
    .option('--write-behind', 'acknowledge on local durability, upload in the background')
    .option('--node <name>', 'this store is one node of a cluster sharing the bucket: large blobs are stored once for all nodes (docs/SCALE-OUT.md)')
    .action(async (o: { s3?: string; s3Endpoint?: string; s3Region?: string; s3PathStyle?: boolean; tiered?: boolean; writeBehind?: boolean; node?: string }, cmd: Command) => {
      if (!o.s3 && (o.s3Endpoint || o.s3Region || o.s3PathStyle || o.tiered || o.writeBehind || o.node)) throw new MailcasError('E_USAGE', '--s3-endpoint, --s3-region, --s3-path-style, --tiered, --write-behind and --node need --s3');
      const s3 = o.s3 ? { ...parseS3Url(o.s3), ...(o.s3Endpoint ? { endpoint: o.s3Endpoint } : {}), ...(o.s3Region ? { region: o.s3Region } : {}), ...(o.s3PathStyle || o.s3Endpoint ? { pathStyle: true } : {}) } : undefined;
      const tiered = o.tiered || o.writeBehind ? { writeBehind: !!o.writeBehind } : undefined;
      const s = await Store.init(storeDir(cmd), { s3, tiered, node: o.node, maxMessageBytes: maxMessageBytes(cmd), maxParts: maxParts(cmd), workers: 0 });
      try {
        process.stderr.write(`store ${path.resolve(s.dir)}: blobs in ${describeBackend(s.backendConfig)}\n`);
      } finally {
        await s.close();
      }
    });

  program
    .command('ingest')
    .addHelpText('after', '\nExamples:\n  $ mailcas ingest --user alice@example.org message.eml\n  $ mailcas ingest --user alice@example.org --mailbox Sent < message.eml')
    .description('store one message (from FILE or stdin) and print its id')
    .requiredOption('--user <user>', 'owner of the message')
    .option('--mailbox <mailbox>', 'mailbox', 'INBOX')
    .argument('[file]', 'message file (default: stdin)')
    .action(async (file: string | undefined, o: { user: string; mailbox: string }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const input = file ? { path: file } : process.stdin;
        const r = await s.ingest(input, { user: o.user, mailbox: o.mailbox });
        out(r.id);
      });
    });

  program
    .command('import')
    .addHelpText('after', '\nExamples:\n  $ mailcas import --user alice@example.org ~alice/Maildir\n  $ mailcas import --user bob --format mbox --json archive.mbox > imported.jsonl\n  $ mailcas import --user bob --skip-existing --json archive.mbox   # resume an interrupted import')
    .description('import message files, directories, Maildirs and mbox files')
    .requiredOption('--user <user>', 'owner of the messages')
    .option('--mailbox <mailbox>', 'mailbox', 'INBOX')
    .addOption(new Option('--format <format>', 'input format').choices(['auto', 'eml', 'maildir', 'mbox']).default('auto'))
    .option('--json', 'one JSON line per committed message, then a summary line')
    .option('--concurrency <n>', 'messages in flight', (v) => positiveInt(v, '--concurrency'), 32)
    .option('--skip-existing', 'skip a message the mailbox already holds with the same bytes (resumes an interrupted import)')
    .argument('<path...>', 'files or directories')
    .action(async (paths: string[], o: { user: string; mailbox: string; format: ImportFormat; json?: boolean; concurrency: number; skipExisting?: boolean }, cmd: Command) => {
      checkPaths(paths, o.format);
      await withStore(cmd, async (s) => {
        const bar = progressBar('import', progressWanted() ? totalSize(paths, o.format).bytes : 0);
        const sum = { messages: 0, bytes: 0, skipped: 0, failed: 0, newBlobs: 0, newBlobBytes: 0, fallbacks: 0, seconds: 0 };
        const t0 = Date.now();
        try {
          await forEachLimit(expandSources(paths, o.format), o.concurrency, async (src) => {
            try {
              if (src.error) throw src.error;
              const r = await s.ingest(src.input, { user: o.user, mailbox: src.mailbox ?? o.mailbox, skipExisting: o.skipExisting });
              if (r.skipped) {
                sum.skipped++;
                if (o.json) out(JSON.stringify({ source: src.label, id: r.id, size: r.size, skipped: true }));
                return;
              }
              sum.messages++;
              sum.bytes += r.size;
              sum.newBlobs += r.newBlobs;
              sum.newBlobBytes += r.newBlobBytes;
              if (r.fallback) sum.fallbacks++;
              if (o.json) out(JSON.stringify({ source: src.label, id: r.id, size: r.size }));
            } catch (e) {
              if (!(e instanceof MailcasError) || e.transient || e.code === 'E_INTERNAL') throw e;
              sum.failed++;
              process.stderr.write(`mailcas: ${src.label}: ${e.message}\n`);
              if (o.json) out(JSON.stringify({ source: src.label, error: e.message, code: e.code }));
            } finally {
              bar.tick(src.size);
            }
          });
        } finally {
          bar.stop();
        }
        sum.seconds = (Date.now() - t0) / 1000;
        if (o.json) out(JSON.stringify({ summary: sum }));
        else
          process.stderr.write(
            `imported ${sum.messages} messages (${(sum.bytes / 1e6).toFixed(1)} MB) in ${sum.seconds.toFixed(1)} s; ${sum.newBlobs} new blobs (${(sum.newBlobBytes / 1e6).toFixed(1)} MB)${sum.skipped ? `; ${sum.skipped} already there, skipped` : ''}${sum.failed ? `; ${sum.failed} failed` : ''}\n`,
          );
        if (sum.failed) process.exitCode = EXIT.dataErr;
      }, { workers: true });
    });

  program
    .command('fetch')
    .addHelpText('after', '\nExamples:\n  $ mailcas fetch --user alice@example.org 42 > 42.eml')
    .description('write the exact bytes of a message to stdout')
    .requiredOption('--user <user>', 'owner of the message')
    .argument('<id>', 'message id')
    .action(async (id: string, o: { user: string }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        await pipeline(await s.fetch(id, { user: o.user }), process.stdout);
      });
    });

  program
    .command('list')
    .addHelpText('after', '\nExamples:\n  $ mailcas list --user alice@example.org\n  $ mailcas list --user alice@example.org --mailbox Archive --json | jq .id')
    .description("list a user's messages (id, mailbox, size, received, subject): from the metadata only")
    .requiredOption('--user <user>', 'owner of the messages')
    .option('--mailbox <mailbox>', 'only this mailbox')
    .option('--json', 'one JSON object per message: id, mailbox, size, received, subject, from, date, messageId')
    .action(async (o: { user: string; mailbox?: string; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        for (let after = 0; ; ) {
          const page = s.listPage(o.user, { mailbox: o.mailbox, after, limit: 1000 });
          for (const m of page) {
            if (o.json) out(JSON.stringify({ id: m.id, mailbox: m.mailbox, size: m.size, received: new Date(m.received).toISOString(), subject: m.subject, from: m.from, date: m.date, messageId: m.messageId }));
            else out(`${m.id}\t${m.mailbox}\t${m.size}\t${new Date(m.received).toISOString()}\t${(m.subject ?? '').replace(/[\t\r\n]+/g, ' ')}`);
          }
          if (page.length < 1000) break;
          after = Number(page[page.length - 1].id);
        }
      });
    });

  program
    .command('export')
    .addHelpText('after', '\nExamples:\n  $ mailcas export --user alice@example.org --out /tmp/alice --mailbox INBOX')
    .description('write every message of a user to DIR/<id>.eml')
    .requiredOption('--user <user>', 'owner of the messages')
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
      });
    });

  program
    .command('expunge')
    .addHelpText('after', '\nExamples:\n  $ mailcas expunge --user alice@example.org 42 43')
    .description('remove messages (their blobs are reclaimed by gc)')
    .requiredOption('--user <user>', 'owner of the messages')
    .argument('<id...>', 'message ids')
    .action(async (ids: string[], o: { user: string }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const n = await s.expunge(o.user, ids);
        process.stderr.write(`expunged ${n} messages\n`);
      });
    });

  program
    .command('gc')
    .addHelpText('after', '\nExamples:\n  $ mailcas gc --dry-run\n  $ mailcas gc --grace 0 --json')
    .description('delete blobs no message references, after a grace period')
    .option('--grace <seconds>', 'keep blobs unreferenced for less than this', (v) => nonNegative(v, '--grace'), 3600)
    .option('--dry-run', 'report what would be deleted')
    .option('--json', 'machine-readable output')
    .action(async (o: { grace: number; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.gc({ graceSeconds: o.grace, dryRun: o.dryRun });
        if (o.json) out(JSON.stringify(r));
        else
          out(
            `${r.dryRun ? 'would delete' : 'deleted'} ${r.deletedBlobs} blobs (${r.deletedBytes} bytes) and ${r.deletedOrphans} orphans (${r.deletedOrphanBytes} bytes); ${r.expiredLeases} expired leases removed; ${r.keptLeased} kept for ingests in flight${s.shared ? `; ${r.deletedMarkers} reference markers deleted from the shared bucket` : ''}`,
          );
      });
    });

  program
    .command('check')
    .addHelpText('after', '\nExamples:\n  $ mailcas check\n  $ mailcas check --deep --json\n  $ mailcas check --repair')
    .description('recount references and compare with the blob backend (exit 0 only when consistent)')
    .option('--repair', 'fix reference counts, recreate rows of existing blobs, delete orphans')
    .option('--deep', 'also read every blob and verify its hash')
    .option('--json', 'machine-readable output')
    .action(async (o: { repair?: boolean; deep?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.check({ repair: o.repair, deep: o.deep });
        if (o.json) out(JSON.stringify(r));
        else {
          out(`${r.consistent ? 'consistent' : 'INCONSISTENT'}: ${r.messages} messages, ${r.blobs} blobs, ${r.objects} objects`);
          const line = (k: string, v: unknown[] | number): void => {
            const n = Array.isArray(v) ? v.length : v;
            if (n) out(`  ${k}: ${n}${Array.isArray(v) ? ' ' + v.slice(0, 5).map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ') + (v.length > 5 ? ' ...' : '') : ''}`);
          };
          line('refcount drift', r.drift);
          line('pack live-byte drift', r.packDrift);
          line('referenced blobs without a row', r.missingRows);
          line('referenced blobs missing from the backend', r.missingBlobs);
          line('orphan objects', r.orphans);
          line('orphan objects in the cold tier', r.coldOrphans);
          line('local copies of blobs already in the cold tier (an interrupted tier or flush; gc removes them)', r.staleHotCopies);
          line('cold copies of blobs stored locally again (gc removes them)', r.staleColdCopies);
          line('shared blobs referenced without a marker of this node (on record; in the bucket with --deep): --repair writes it', r.missingMarkers);
          line('reference markers no longer needed (gc deletes them)', r.unneededMarkers);
          line('blobs only on local files (waiting for tier or flush)', r.pendingUploads);
          line('uncommitted objects (leased)', r.uncommitted);
          line('unreferenced blobs (gc reclaims)', r.unreferenced);
          line('undecodable messages', r.corruptMessages);
          line('corrupt blobs', r.corruptBlobs);
          if (r.repaired) out(`  repaired: ${JSON.stringify(r.repaired)}`);
        }
        if (!r.consistent) process.exitCode = EXIT.failure;
      });
    });

  program
    .command('report')
    .addHelpText('after', '\nExamples:\n  $ mailcas report\n  $ mailcas report --json --top 50\n  $ mailcas report --html report.html')
    .description('storage figures: messages, logical and stored bytes, dedup, by component, content type and user')
    .option('--json', 'machine-readable output')
    .option('--html <file>', 'also write a self-contained HTML page with charts')
    .option('--top <n>', 'shared parts to list', (v) => positiveInt(v, '--top'), 20)
    .action(async (o: { json?: boolean; html?: string; top: number }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = s.report({ top: o.top });
        if (o.html) {
          const { renderHtmlReport } = await import('../report/html.js');
          fs.writeFileSync(o.html, renderHtmlReport(r, { title: `mailcas storage report: ${path.resolve(s.dir)}` }));
          process.stderr.write(`wrote ${o.html}\n`);
        }
        out(o.json ? JSON.stringify(r, null, 2) : formatReport(r));
      });
    });

  program
    .command('analyze')
    .addHelpText('after', '\nExamples:\n  $ mailcas analyze ~alice/Maildir\n  $ mailcas analyze --json --dovecot-min-size 131072 /srv/mail')
    .description('what would mailcas save on this mail? (Maildir, mbox or directory; writes nothing)')
    .addOption(new Option('--format <format>', 'input format').choices(['auto', 'eml', 'maildir', 'mbox']).default('auto'))
    .option('--json', 'machine-readable output')
    .option('--dovecot-min-size <bytes>', "Dovecot's mail_attachment_min_size to compare with", (v) => parseInt(v, 10), 131072)
    .option('--inline-threshold <bytes>', 'parts below this stay in the database', (v) => parseInt(v, 10), 4096)
    .argument('<path...>', 'files or directories')
    .action(async (paths: string[], o: { format: ImportFormat; json?: boolean; dovecotMinSize: number; inlineThreshold: number }) => {
      checkPaths(paths, o.format);
      const { analyze } = await import('../analyze/analyze.js');
      const { formatAnalysis } = await import('../analyze/format.js');
      const bar = progressBar('analyze', progressWanted() ? totalSize(paths, o.format).bytes : 0);
      let r;
      try {
        r = await analyze(paths, {
          format: o.format,
          dovecotMinSize: o.dovecotMinSize,
          inlineThreshold: o.inlineThreshold,
          onProgress: (n) => bar.tick(n),
          onError: (src, e) => process.stderr.write(`mailcas: ${src}: ${e.message}\n`),
        });
      } finally {
        bar.stop();
      }
      out(o.json ? JSON.stringify(r, null, 2) : formatAnalysis(r));
    });

  program
    .command('tier')
    .addHelpText('after', '\nExamples:\n  $ mailcas tier --older-than 30d\n  $ mailcas tier --older-than 0 --min-size 1048576 --json\n  $ mailcas tier --dry-run')
    .description('move blobs from local files to the bucket (tiered stores): large ones as objects, small ones in packs; crash-safe')
    .option('--older-than <duration>', "blobs created at least this long ago: 30d, 12h, 90m, 45s, or 0 for all (default: the store's policy)", parseDuration)
    .option('--min-size <bytes>', 'only blobs of at least this many bytes', (v) => nonNegativeInt(v, '--min-size'))
    .option('--dry-run', 'report what would move')
    .option('--json', 'machine-readable output')
    .action(async (o: { olderThan?: number; minSize?: number; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.tier({ ...(o.olderThan !== undefined ? { olderThanMs: o.olderThan } : {}), ...(o.minSize !== undefined ? { minSize: o.minSize } : {}), dryRun: o.dryRun });
        out(o.json ? JSON.stringify(r) : tierLine(r));
      });
    });

  program
    .command('compact')
    .addHelpText('after', '\nExamples:\n  $ mailcas compact                    # mail 30 days and older\n  $ mailcas compact --older-than 0 --vacuum --json')
    .description("recompress older mail's header blocks and inline bodies with dictionaries trained on the store as it is now; safe while other commands run")
    .option('--older-than <duration>', 'messages received at least this long ago: 30d, 12h, 90m, 45s, or 0 for all (default 30d)', parseDuration)
    .option('--vacuum', 'then rebuild the database file to give the space back (needs free disk as large as the database; deliveries wait meanwhile)')
    .option('--json', 'machine-readable output')
    .action(async (o: { olderThan?: number; vacuum?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        let bar: ReturnType<typeof progressBar> | null = null;
        let seen = 0;
        const r = await s.compact({
          ...(o.olderThan !== undefined ? { olderThanMs: o.olderThan } : {}),
          vacuum: !!o.vacuum,
          progress: (done, total) => {
            bar ??= progressBar('compact', total, 'items');
            bar.tick(done - seen);
            seen = done;
          },
        });
        (bar as ReturnType<typeof progressBar> | null)?.stop();
        out(
          o.json
            ? JSON.stringify(r)
            : `looked at ${r.messages} messages; header blocks of ${r.rewritten} rewritten (${r.bytesBefore} -> ${r.bytesAfter} bytes${pct(r.bytesBefore, r.bytesAfter)}), inline bodies of ${r.inlineRewritten} (${r.inlineBytesBefore} -> ${r.inlineBytesAfter} bytes${pct(r.inlineBytesBefore, r.inlineBytesAfter)}); ${r.trained ? `trained dictionary ${r.dictionary}` : r.dictionary ? `dictionary ${r.dictionary}` : 'no dictionary yet (too little mail)'}; ${r.pagesFreed} database pages freed`,
        );
      });
    });

  program
    .command('flush')
    .addHelpText('after', '\nExamples:\n  $ mailcas flush\n  $ mailcas flush --json')
    .description('upload everything still only on local files (the write-behind backlog) now')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.flush();
        out(o.json ? JSON.stringify(r) : tierLine(r));
        if (r.pendingUploads) process.exitCode = EXIT.failure;
      });
    });

  program
    .command('deliver')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas deliver --user alice < message.eml\n  $ mailcas --store /var/lib/mailcas deliver --user "$USER" --from "$SENDER"          # Postfix mailbox_command\n  $ mailcas deliver --users /etc/mailcas/users --user ${recipient} --from ${sender} # Postfix pipe(8)\n\nExit codes (sysexits, as MTAs expect): 0 delivered, 65 refused (over a limit, empty), 67 unknown user (with --users),\n74 store unusable, 75 temporary (store busy, backend down, disk full): the MTA retries.',
    )
    .description('deliver one message from stdin (a local delivery agent for an MTA)')
    .requiredOption('--user <user>', 'recipient: a user name, or an address (mapped with --users / --user-format / --recipient-delimiter)')
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
          const input: AsyncIterable<Buffer> = o.addHeaders ? withHeaders(process.stdin, (first) => deliveryHeaders(first, o.from ?? '', o.user)) : process.stdin;
          await s.ingest(input, { user: mapped.user, mailbox: o.mailbox ?? mapped.mailbox });
        });
      } catch (e) {
        process.stderr.write(`mailcas: ${(sqliteError(e) as Error).message.split('\n')[0]}\n`);
        process.exitCode = deliveryExit(sqliteError(e));
      }
    });

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
        const { LmtpService } = await import('../delivery/lmtp-server.js');
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
      const { Tokens } = await import('../service/tokens.js');
      const { HttpService } = await import('../service/http-server.js');
      const tokens = Tokens.fromFile(o.tokens);
      if (!tokens.size) throw new MailcasError('E_USAGE', `the tokens file ${o.tokens} lists no token`);
      const s = await Store.open(storeDir(cmd));
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

  program
    .command('imap')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas --store /var/lib/mailcas imap --listen 127.0.0.1:143 --passwd /etc/mailcas/passwd\n  $ mailcas imap --listen 127.0.0.1:1143 --passwd users.txt\n\nPassword file: lines "user:password", the password plain or {SHA512-CRYPT}$6$..., {SHA256-CRYPT}, {SSHA512}, {PLAIN}.\nRead-only: SELECT is EXAMINE, no flags are kept. No TLS: listen on loopback or behind a TLS proxy.\nSIGTERM: says BYE to every session and exits 0.',
    )
    .description('serve a read-only IMAP4rev1 front over the store (FETCH, SEARCH, LIST, STATUS) for mail clients')
    .requiredOption('--listen <host:port>', 'TCP address to listen on')
    .requiredOption('--passwd <file>', 'users and passwords: lines "user:password" ({SCHEME} hashes as Dovecot writes them)')
    .option('--max-sessions <n>', 'sessions at once', (v) => positiveInt(v, '--max-sessions'), 1000)
    .option('--max-connections-per-address <n>', 'sessions one remote address may hold at once; more get BYE', (v) => positiveInt(v, '--max-connections-per-address'), DEFAULT_CONNECTIONS_PER_ADDRESS)
    .option('--login-timeout <seconds>', 'time to log in before BYE', (v) => positiveInt(v, '--login-timeout'), 60)
    .option('--idle-timeout <seconds>', 'a logged-in session idle this long gets BYE (RFC 3501: at least 30 minutes)', (v) => positiveInt(v, '--idle-timeout'), 1800)
    .action(async (o: { listen: string; passwd: string; maxSessions: number; maxConnectionsPerAddress: number; loginTimeout: number; idleTimeout: number }, cmd: Command) => {
      const where = parseHostPort(o.listen);
      const { PasswordFile } = await import('../imap/passwd.js');
      const { ImapService } = await import('../imap/imap-server.js');
      const passwd = PasswordFile.fromFile(o.passwd);
      for (const w of passwd.warnings) process.stderr.write(`mailcas: ${w}\n`);
      if (!passwd.size) throw new MailcasError('E_USAGE', `the password file ${o.passwd} lists no user${passwd.warnings.length ? ' with a password' : ''}`);
      const s = await Store.open(storeDir(cmd));
      const log = jsonLine;
      const svc = new ImapService(s, { passwd, log: defaultLogger(), maxSessions: o.maxSessions, maxPerAddress: o.maxConnectionsPerAddress, loginMs: o.loginTimeout * 1000, idleMs: o.idleTimeout * 1000 });
      try {
        log({ event: 'imap-listening', on: await svc.listen(where), store: path.resolve(s.dir), users: passwd.size });
      } catch (e) {
        await s.close();
        throw e;
      }
      await runUntilSignal('imap', async () => {
        await svc.close();
        await s.close();
      });
    });

  program
    .command('move-user')
    .addHelpText('after', '\nExamples:\n  $ mailcas --store /srv/node1 move-user --user alice --to /srv/node2\n\nCrash-safe and resumable: every message is copied and read back on the target before any is removed from the\nsource; run the same command again after an interruption. Mail delivered to the source during the move stays there:\nrun it again after switching delivery.')
    .description("move a user's messages and mailboxes to another store (same ids order, mailboxes and received times; exact bytes)")
    .requiredOption('--user <user>', 'the user to move')
    .requiredOption('--to <dir>', 'the target store (created when missing)')
    .option('--json', 'one JSON line with what was moved')
    .action(async (o: { user: string; to: string; json?: boolean }, cmd: Command) => {
      if (path.resolve(o.to) === path.resolve(storeDir(cmd))) throw new MailcasError('E_USAGE', '--to is the store itself');
      await withStore(cmd, async (from) => {
        const { moveUser } = await import('../admin/move-user.js');
        const to = await Store.open(o.to, { workers: 0 });
        try {
          const rep = await moveUser(from, to, o.user);
          if (o.json) out(JSON.stringify(rep));
          else out(`${o.user}: ${rep.messages} messages (${rep.bytes} bytes) now on ${o.to}: ${rep.copied} copied (${rep.newBlobBytes} blob bytes written there), ${rep.alreadyThere} already there; ${rep.expunged} removed from ${storeDir(cmd)}`);
        } finally {
          await to.close();
        }
      });
    });

  const cluster = program.command('cluster').description('nodes sharing one bucket: where users belong (see docs/SCALE-OUT.md)');
  cluster
    .command('plan')
    .addHelpText(
      'after',
      '\nNodes file: lines "NAME WEIGHT STORE_DIR" (weight: capacity share, e.g. disk size in GB).\n\nExamples:\n  $ mailcas cluster plan --nodes /etc/mailcas/nodes\n  $ mailcas cluster plan --nodes nodes.txt --json | jq .moves',
    )
    .description('place users on nodes by weighted rendezvous hashing and print the moves needed (reads each node store; changes nothing)')
    .requiredOption('--nodes <file>', 'lines "NAME WEIGHT STORE_DIR"')
    .option('--json', 'one JSON object: moves, and users/messages/bytes per node after them')
    .action(async (o: { nodes: string; json?: boolean }) => {
      let nodes: ReturnType<typeof parseNodes>;
      try {
        nodes = parseNodes(fs.readFileSync(o.nodes, 'utf8'));
      } catch (e) {
        throw new MailcasError('E_USAGE', `${o.nodes}: ${(e as Error).message}`);
      }
      const current: { user: string; node: string; messages: number; bytes: number }[] = [];
      for (const n of nodes) {
        if (!n.store) throw new MailcasError('E_USAGE', `${o.nodes}: node ${n.name} has no store directory`);
        if (!fs.existsSync(path.join(n.store, 'meta.sqlite'))) continue; // a new, empty node
        const s = await Store.open(n.store);
        try {
          for (const u of s.users()) current.push({ ...u, node: n.name });
        } finally {
          await s.close();
        }
      }
      const moves = planMoves(current, nodes);
      const after = loads(current, nodes);
      if (o.json) {
        out(JSON.stringify({ users: current.length, moves, nodes: Object.fromEntries(after) }));
        return;
      }
      for (const m of moves) out(`mailcas --store ${nodes.find((n) => n.name === m.from)!.store} move-user --user ${m.user} --to ${nodes.find((n) => n.name === m.to)!.store}   # ${m.messages} messages, ${m.bytes} bytes`);
      out(`# ${moves.length} of ${current.length} users move (${moves.reduce((a, m) => a + m.bytes, 0)} bytes of mail)`);
      for (const [name, l] of after) out(`# after: ${name}: ${l.users} users, ${l.messages} messages, ${l.bytes} bytes`);
    });

  cluster
    .command('forget-node')
    .addHelpText(
      'after',
      '\nFor a node that has left the cluster for good: move its users away first (move-user), retire its store, then run\nthis from any other node. Its reference markers go (the blobs only it referenced are then the collector\'s) and so do\nits own objects (nodes/NAME/). Never run it for a node that still serves mail.\n\nExamples:\n  $ mailcas --store /srv/node1 cluster forget-node --node node3 --dry-run\n  $ mailcas --store /srv/node1 cluster forget-node --node node3 && mailcas --store /srv/node1 cluster collect',
    )
    .description('remove what a retired node left in the shared bucket: its reference markers and its own objects')
    .requiredOption('--node <name>', 'the retired node')
    .option('--dry-run', 'count what would be deleted')
    .option('--json', 'machine-readable output')
    .action(async (o: { node: string; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.forgetNode(o.node, { dryRun: o.dryRun });
        if (o.json) out(JSON.stringify({ node: o.node, dryRun: !!o.dryRun, ...r }));
        else out(`node ${o.node}: ${o.dryRun ? 'would delete' : 'deleted'} ${r.markers} reference markers and ${r.objects} objects of its own (${r.bytes} bytes)`);
      });
    });

  cluster
    .command('collect')
    .addHelpText(
      'after',
      '\nRun it from any node (cron, a systemd timer), on several at once if you like: it deletes the blobs in the shared\nbucket that no node references any more (each node\'s own gc removes its references first). It needs nothing but the bucket.\n\nExamples:\n  $ mailcas --store /srv/node1 cluster collect\n  $ mailcas --store /srv/node1 cluster collect --dry-run --json',
    )
    .description('delete shared blobs no node of the cluster has a reference marker on (docs/SCALE-OUT.md)')
    .option('--grace <seconds>', 'leave blobs uploaded less than this long ago alone', (v) => nonNegative(v, '--grace'), DEFAULT_COLLECT_GRACE_SECONDS)
    .option('--dry-run', 'report what would be deleted')
    .option('--json', 'machine-readable output')
    .action(async (o: { grace: number; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.collect({ graceSeconds: o.grace, dryRun: o.dryRun });
        if (o.json) out(JSON.stringify(r));
        else
          out(
            `${r.instances} shared blobs: ${r.referenced} referenced, ${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted} (${r.deletedBytes} bytes), ${r.closedKept} closed but still referenced, ${r.young} too young; ${r.staleTombstones} stale tombstones removed`,
          );
      });
    });

  return program;
}

function parseHostPort(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new MailcasError('E_USAGE', `--listen needs HOST:PORT, got ${JSON.stringify(v)}`);
  return { host: m[1] ?? m[2], port };
}

/** stdin with the delivery headers in front (computed from the first chunk: its line ending). */
function withHeaders(src: NodeJS.ReadableStream, head: (first: Buffer) => Buffer): AsyncIterable<Buffer> {
  return (async function* () {
    let first = true;
    for await (const c of src as AsyncIterable<Buffer>) {
      if (first) {
        first = false;
        yield head(c);
      }
      yield c;
    }
  })();
}

/** deliver's exit code: sysexits as MTAs read them; never one that bounces mail for our own fault. */
function deliveryExit(e: unknown): number {
  if (e instanceof CommanderError) return EXIT.usage;
  return exitFor(e);
}

/** 30d, 12h, 90m, 45s, 0 (milliseconds). */
function parseDuration(v: string): number {
  const m = /^(\d+)([dhms]?)$/.exec(v.trim());
  if (!m || (m[2] === '' && m[1] !== '0')) throw new MailcasError('E_USAGE', `a duration is a number with d, h, m or s (30d, 12h), or 0; got ${JSON.stringify(v)}`);
  return Number(m[1]) * ({ d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, '': 0 } as Record<string, number>)[m[2]];
}

function nonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new MailcasError('E_USAGE', `${flag} needs a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

/** One JSON line on stderr: what the long-running commands log. */
function jsonLine(line: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ t: new Date().toISOString(), ...line }) + '\n');
}

/** A long-running command: waits for SIGTERM or SIGINT, then closes (its services, then the store), logging both steps. */
async function runUntilSignal(name: string, close: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      jsonLine({ event: `${name}-stopping`, signal: sig });
      void close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  jsonLine({ event: `${name}-stopped` });
}

const pct = (before: number, after: number): string => (before ? `, ${Math.round((100 * (before - after)) / before)}% smaller` : '');

function tierLine(r: { dryRun: boolean; objects: number; objectBytes: number; packed: number; packedBytes: number; packs: number; recompressed: number; recompressSavedBytes: number; keptLeased: number; lost: number; corrupt: string[]; pendingUploads: number; pendingBytes: number }): string {
  return `${r.dryRun ? 'would move' : 'moved'} ${r.objects} blobs as objects (${r.objectBytes} bytes) and ${r.packed} into ${r.dryRun ? '' : `${r.packs} `}packs (${r.packedBytes} bytes${r.recompressed ? `; ${r.recompressed} re-encoded with brotli, ${r.recompressSavedBytes} bytes saved` : ''})${r.keptLeased ? `; ${r.keptLeased} local copies kept for ingests in flight` : ''}${r.lost ? `; ${r.lost} moves given up (gc took back what they wrote: still local, the next run moves them)` : ''}${r.corrupt.length ? `; ${r.corrupt.length} damaged blobs left in place (see check)` : ''}; still local: ${r.pendingUploads} blobs (${r.pendingBytes} bytes)`;
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new MailcasError('E_USAGE', `${flag} needs a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** The package's version (package.json is two levels above both src/cli and dist/cli). */
function version(): string {
  try {
    return JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

function nonNegative(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new MailcasError('E_USAGE', `${flag} needs a number of seconds >= 0, got ${JSON.stringify(v)}`);
  return n;
}

export function exitCodeFor(e: unknown): number {
  e = sqliteError(e);
  if (e instanceof MailcasError) {
    if (e.transient) return EXIT.tempFail;
    if (e.code === 'E_STORE') return EXIT.ioErr;
    if (e.code === 'E_USAGE') return EXIT.usage;
    if (e.code === 'E_NOT_FOUND') return EXIT.noInput;
    if (e.code === 'E_TOO_LARGE' || e.code === 'E_REFUSED') return EXIT.dataErr;
    if (e.code === 'E_INTERNAL') return EXIT.software;
    return EXIT.failure;
  }
  return EXIT.software;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  try {
    const file = findConfigFile(argv.slice(2));
    if (file) {
      const cfg = parseConfigFile(readOperatorFile(file, 'config file'), file);
      validateConfig(cfg, program, file);
      // each command's section is applied just before its own arguments are parsed (those win)
      const hook = (c: Command): void => {
        if (!c.commands.length) return;
        c.hook('preSubcommand', (parent, sub) => {
          if (parent === program) applyConfig(cfg, program, file);
          applyConfig(cfg, sub, file);
        });
        c.commands.forEach(hook);
      };
      hook(program);
    }
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    e = sqliteError(e);
    const debug = argv.includes('--debug') || ['1', 'true', 'yes'].includes(process.env.MAILCAS_DEBUG ?? '');
    const msg =
      e instanceof MailcasError
        ? e.message
        : `internal error: ${String((e as Error)?.message ?? e).split('\n')[0]}${debug ? '' : ' (run with --debug or MAILCAS_DEBUG=1 for details)'}`;
    process.stderr.write(`mailcas: ${msg}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = exitCodeFor(e);
  }
}
