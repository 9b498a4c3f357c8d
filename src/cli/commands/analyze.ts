
import { Command, Option } from 'commander';
import { checkPaths, totalSize, type ImportFormat } from '../../importer/sources.js';
import { progressBar, progressWanted } from '../progress.js';
import { out } from '../command-kit.js';

/** analyze: what mailcas would save on existing mail, without writing a store. */
export function registerAnalyzeCommands(program: Command): void {
  analyzeCommand(program);
}

function analyzeCommand(program: Command): void {
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
      const { analyze } = await import('../../analyze/analyze.js');
      const { formatAnalysis } = await import('../../analyze/format.js');
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
}
