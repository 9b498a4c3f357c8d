import { Option, type Command } from 'commander';
import { MailcasError } from '../../errors.js';
import type { Store } from '../../store.js';
import { ResumeState } from '../../ingest/ingest.js';
import { checkPaths, expandSources, totalSize, type ImportFormat, type MessageSource } from '../../importer/sources.js';
import { forEachLimit } from '../../util/pool.js';
import { progressBar, progressWanted } from '../progress.js';
import { EXIT, out, positiveInt, withStore } from '../command-kit.js';

interface ImportFlags {
  user: string;
  mailbox: string;
  format: ImportFormat;
  json?: boolean;
  concurrency: number;
  skipExisting?: boolean;
}

interface Summary {
  messages: number;
  bytes: number;
  skipped: number;
  failed: number;
  refused: number;
  unreadable: number;
  newBlobs: number;
  newBlobBytes: number;
  fallbacks: number;
  seconds: number;
  interrupted?: string;
}

export function importCommand(program: Command): void {
  program
    .command('import')
    .addHelpText(
      'after',
      `
Every file in a directory is taken as one message, stored exactly whatever its first line (Maildirs: cur/ and
new/, Maildir++ subfolders as mailboxes; mbox files are split on From_ lines). Entries that are not regular
files (FIFOs, sockets, devices, links to them) are never opened: each is reported as a failed entry.

Exit: 0 all imported; 65 some message was refused (over a limit, empty); 66 some entry could not be read
(missing, unreadable, not a regular file) and none was refused; 130 / 143 interrupted (SIGINT / SIGTERM):
what was committed stays, and running the same command with --skip-existing finishes the job exactly.

Examples:
  $ mailcas import --user alice@example.org ~alice/Maildir
  $ mailcas import --user bob --format mbox --json archive.mbox > imported.jsonl
  $ mailcas import --user bob --skip-existing --json archive.mbox   # resume an interrupted import`,
    )
    .description('import message files, directories, Maildirs and mbox files')
    .requiredOption('--user <user>', 'owner of the messages (required)')
    .option('--mailbox <mailbox>', 'mailbox', 'INBOX')
    .addOption(new Option('--format <format>', 'input format').choices(['auto', 'eml', 'maildir', 'mbox']).default('auto'))
    .option('--json', 'one JSON line per committed message, then a summary line')
    .option('--concurrency <n>', 'messages in flight', (v) => positiveInt(v, '--concurrency'), 32)
    .option('--skip-existing', 'resume an interrupted import: copies the mailbox held before this run are not stored again (as many as it held), the rest are')
    .argument('<path...>', 'files or directories')
    .action(async (paths: string[], o: ImportFlags, cmd: Command) => {
      checkPaths(paths, o.format);
      await withStore(cmd, (s) => runImport(s, paths, o), { workers: true, create: true });
    });
}

async function runImport(s: Store, paths: string[], o: ImportFlags): Promise<void> {
  const bar = progressBar('import', progressWanted() ? totalSize(paths, o.format).bytes : 0);
  const sum: Summary = { messages: 0, bytes: 0, skipped: 0, failed: 0, refused: 0, unreadable: 0, newBlobs: 0, newBlobBytes: 0, fallbacks: 0, seconds: 0 };
  const resume = o.skipExisting ? new ResumeState(s.nextId()) : undefined;
  const t0 = Date.now();
  // SIGINT / SIGTERM: no new message is started, those in flight finish (committed ones keep their line), then
  // the terminal is restored and one line says what was done and how to resume; a second signal stops at once
  let signal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signal) {
      bar.stop();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    signal = sig;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await forEachLimit(untilSignal(expandSources(paths, o.format), () => signal !== null), o.concurrency, async (src) => {
      try {
        await importOne(s, src, o, sum, resume);
      } finally {
        bar.tick(src.size);
      }
    });
  } finally {
    bar.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  sum.seconds = (Date.now() - t0) / 1000;
  if (signal) sum.interrupted = signal;
  if (o.json) out(JSON.stringify({ summary: sum }));
  else process.stderr.write(summaryLine(sum));
  if (signal) {
    process.stderr.write(`mailcas: interrupted (${signal}): ${sum.messages} messages committed${sum.skipped ? `, ${sum.skipped} already there` : ''}; the rest were not imported: run the same command with --skip-existing to finish\n`);
    process.exitCode = signal === 'SIGINT' ? 130 : 143;
  } else if (sum.refused) process.exitCode = EXIT.dataErr;
  else if (sum.unreadable || sum.failed) process.exitCode = sum.unreadable ? EXIT.noInput : EXIT.dataErr;
}

async function importOne(s: Store, src: MessageSource, o: ImportFlags, sum: Summary, resume: ResumeState | undefined): Promise<void> {
  try {
    if (src.error) throw src.error;
    const r = await s.ingest(src.input, { user: o.user, mailbox: src.mailbox ?? o.mailbox, skipExisting: resume });
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
    if (e.code === 'E_SOURCE') sum.unreadable++;
    if (e.code === 'E_TOO_LARGE' || e.code === 'E_REFUSED') sum.refused++;
    process.stderr.write(`mailcas: ${src.label}: ${e.message}\n`);
    if (o.json) out(JSON.stringify({ source: src.label, error: e.message, code: e.code }));
  }
}

/** The sources, until `stop` says otherwise (none is started after a signal). */
function* untilSignal<T>(items: Iterable<T>, stop: () => boolean): Generator<T> {
  for (const x of items) {
    if (stop()) return;
    yield x;
  }
}

function summaryLine(sum: Summary): string {
  return `imported ${sum.messages} messages (${(sum.bytes / 1e6).toFixed(1)} MB) in ${sum.seconds.toFixed(1)} s; ${sum.newBlobs} new blobs (${(sum.newBlobBytes / 1e6).toFixed(1)} MB)${sum.skipped ? `; ${sum.skipped} already there, skipped` : ''}${sum.failed ? `; ${sum.failed} failed` : ''}\n`;
}
