import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Store } from '../../store.js';
import { MailcasError } from '../../errors.js';
import { progressBar } from '../progress.js';
import { formatReport } from '../../report/format.js';
import { describeBackend } from '../../backend/open-backend.js';
import { parseS3Url } from '../../backend/s3-backend.js';
import { EXIT, maxMessageBytes, maxParts, nonNegative, nonNegativeInt, out, parseDuration, positiveInt, storeDir, withStore } from '../command-kit.js';

/** Commands that create, check and maintain a store: init, gc, check, report, tier, compact, flush. */
export function registerMaintenanceCommands(program: Command): void {
  initCommand(program);
  gcCommand(program);
  checkCommand(program);
  reportCommand(program);
  tierCommand(program);
  compactCommand(program);
  flushCommand(program);
}

function initCommand(program: Command): void {
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
}

function gcCommand(program: Command): void {
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
            `${r.dryRun ? 'would delete' : 'deleted'} ${r.deletedBlobs} blobs (${r.deletedBytes} bytes) and ${r.deletedOrphans} orphans (${r.deletedOrphanBytes} bytes); ${r.expiredLeases} expired leases removed; ${r.keptLeased} kept for ingests in flight${s.shared ? `; ${r.deletedMarkers} reference markers deleted from the shared bucket` : ''}${r.deletedTempFiles ? `; ${r.deletedTempFiles} temp files of stopped writers removed (${r.deletedTempBytes} bytes)` : ''}`,
          );
      });
    });
}

function checkCommand(program: Command): void {
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
          if (r.tempFiles) out(`  temp files (writes in progress, or left by writers that stopped; gc removes those older than its grace, 10 minutes at least): ${r.tempFiles} (${r.tempBytes} bytes)`);
          line('unreferenced blobs (gc reclaims)', r.unreferenced);
          line('undecodable messages', r.corruptMessages);
          line('corrupt blobs', r.corruptBlobs);
          if (r.rehashed) out(`  re-hashed: ${r.rehashed.blobs} blobs (${r.rehashed.bytes} bytes), every one read back whole and checked against its name`);
          if (r.repaired) out(`  repaired: ${JSON.stringify(r.repaired)}`);
        }
        if (!r.consistent) process.exitCode = EXIT.failure;
      });
    });
}

function reportCommand(program: Command): void {
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
          const { renderHtmlReport } = await import('../../report/html.js');
          fs.writeFileSync(o.html, renderHtmlReport(r, { title: `mailcas storage report: ${path.resolve(s.dir)}` }));
          process.stderr.write(`wrote ${o.html}\n`);
        }
        out(o.json ? JSON.stringify(r, null, 2) : formatReport(r));
      }, { readOnly: true });
    });
}

function tierCommand(program: Command): void {
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
}

function compactCommand(program: Command): void {
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
}

function flushCommand(program: Command): void {
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
}

const pct = (before: number, after: number): string => (before ? `, ${Math.round((100 * (before - after)) / before)}% smaller` : '');

function tierLine(r: { dryRun: boolean; objects: number; objectBytes: number; packed: number; packedBytes: number; packs: number; recompressed: number; recompressSavedBytes: number; keptLeased: number; lost: number; corrupt: string[]; pendingUploads: number; pendingBytes: number }): string {
  return `${r.dryRun ? 'would move' : 'moved'} ${r.objects} blobs as objects (${r.objectBytes} bytes) and ${r.packed} into ${r.dryRun ? '' : `${r.packs} `}packs (${r.packedBytes} bytes${r.recompressed ? `; ${r.recompressed} re-encoded with brotli, ${r.recompressSavedBytes} bytes saved` : ''})${r.keptLeased ? `; ${r.keptLeased} local copies kept for ingests in flight` : ''}${r.lost ? `; ${r.lost} moves given up (gc took back what they wrote: still local, the next run moves them)` : ''}${r.corrupt.length ? `; ${r.corrupt.length} damaged blobs left in place (see check)` : ''}; still local: ${r.pendingUploads} blobs (${r.pendingBytes} bytes)`;
}
