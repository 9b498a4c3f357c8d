#!/usr/bin/env node
import { CommanderError, type Command } from 'commander';
import { MailcasError } from '../errors.js';
import { sqliteError } from '../meta/db.js';
import { readOperatorFile } from '../util/operator-file.js';
import { applyConfig, findConfigFile, parseConfigFile, validateConfig } from './config-file.js';
import { EXIT } from './command-kit.js';
import { buildProgram } from './program.js';

export { EXIT } from './command-kit.js';
export { buildProgram } from './program.js';

export function exitCodeFor(e: unknown): number {
  e = sqliteError(e);
  if (e instanceof MailcasError) {
    if (e.transient) return EXIT.tempFail;
    if (e.code === 'E_STORE') return EXIT.ioErr;
    if (e.code === 'E_USAGE') return EXIT.usage;
    if (e.code === 'E_NOT_FOUND' || e.code === 'E_SOURCE') return EXIT.noInput;
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
