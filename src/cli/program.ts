import fs from 'node:fs';
import { Command } from 'commander';
import { DEFAULT_MAX_PARTS } from '../limits.js';
import { registerMessagesCommands } from './commands/messages.js';
import { registerMaintenanceCommands } from './commands/maintenance.js';
import { registerAnalyzeCommands } from './commands/analyze.js';
import { registerDeliveryCommands } from './commands/delivery.js';
import { registerServersCommands } from './commands/servers.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerMailboxStateCommands } from './commands/mailbox-state.js';
import { registerSyncCommands } from './commands/sync.js';

/**
 * The mailcas command: its global options, then each family of commands
 * from a file of its own (src/cli/commands/). A command's heavy code (the
 * servers, analyze, the HTML report, move-user, the progress bars) is
 * loaded by its action, so every other command starts without it.
 */
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

  registerMaintenanceCommands(program);
  registerMessagesCommands(program);
  registerMailboxStateCommands(program);
  registerSyncCommands(program);
  registerAnalyzeCommands(program);
  registerDeliveryCommands(program);
  registerServersCommands(program);
  registerClusterCommands(program);
  return program;
}

/** The package's version (package.json is two levels above both src/cli and dist/cli). */
function version(): string {
  try {
    return JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}
