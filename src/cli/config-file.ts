import fs from 'node:fs';
import type { Command, Option } from 'commander';
import { MailcasError } from '../errors.js';

/**
 * The operator's config file: defaults for any command-line option, so that
 * limits and settings live in one place instead of every MTA hook and cron
 * line. Lines `option = value` (the option's long name without dashes);
 * global options at the top, a command's under `[command]` (`[cluster plan]`
 * for a subcommand). A value given on the command line or in the option's
 * environment variable wins over the file; the file wins over the built-in
 * default. Unknown sections and options are refused with their line number.
 *
 *   store = /var/lib/mailcas
 *   max-message-bytes = 52428800
 *
 *   [lmtp]
 *   max-recipients = 500
 *   idle-timeout = 120
 */
export type ConfigFile = Map<string, Map<string, { value: string; line: number }>>;

export function parseConfigFile(text: string, file: string): ConfigFile {
  const out: ConfigFile = new Map([['', new Map()]]);
  let section = '';
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const sec = /^\[\s*([a-z][a-z0-9 -]*?)\s*\]$/i.exec(line);
    if (sec) {
      section = sec[1].toLowerCase().replace(/\s+/g, ' ');
      if (!out.has(section)) out.set(section, new Map());
      return;
    }
    const kv = /^([a-z][a-z0-9-]*)\s*=\s*(.*)$/i.exec(line);
    if (!kv) throw new MailcasError('E_USAGE', `${file} line ${i + 1}: expected "option = value" or "[command]"`);
    out.get(section)!.set(kv[1].toLowerCase(), { value: kv[2].replace(/^"(.*)"$/, '$1'), line: i + 1 });
  });
  return out;
}

/** The config file to use: --config, else $MAILCAS_CONFIG, else /etc/mailcas/mailcas.conf when it exists. */
export function findConfigFile(argv: string[]): string | null {
  const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (i >= 0) return argv[i].includes('=') ? argv[i].slice(argv[i].indexOf('=') + 1) : (argv[i + 1] ?? null);
  if (process.env.MAILCAS_CONFIG) return process.env.MAILCAS_CONFIG;
  return fs.existsSync('/etc/mailcas/mailcas.conf') ? '/etc/mailcas/mailcas.conf' : null;
}

/** Options whose environment variable, when set, wins over the file (the command reads the variable itself). */
const ENV_OF: Record<string, string> = { store: 'MAILCAS_STORE', 'max-message-bytes': 'MAILCAS_MAX_MESSAGE_BYTES', 'max-parts': 'MAILCAS_MAX_PARTS' };

const pathOf = (c: Command): string => {
  const names: string[] = [];
  for (let x: Command | null = c; x && x.parent; x = x.parent) names.unshift(x.name());
  return names.join(' ');
};

/** Checks every section and option of the file against the program's commands (a typo is an error, not a silent no-op). */
export function validateConfig(cfg: ConfigFile, program: Command, file: string): void {
  const commands = new Map<string, Command>([['', program]]);
  const walk = (c: Command): void => {
    for (const s of c.commands) {
      commands.set(pathOf(s), s);
      walk(s);
    }
  };
  walk(program);
  for (const [section, entries] of cfg) {
    const cmd = commands.get(section);
    if (!cmd) throw new MailcasError('E_USAGE', `${file}: no command [${section}]`);
    for (const [key, { value, line }] of entries) {
      const opt = cmd.options.find((o) => o.long === `--${key}`);
      if (!opt || key === 'config') throw new MailcasError('E_USAGE', `${file} line ${line}: [${section || 'global'}] has no option ${key} (see mailcas ${section} --help)`);
      parseValue(opt, key, value, line, file); // a bad value is found now, whichever command runs
    }
  }
}

/** Sets the file's values for one command (its section; '' for the program's global options) where the command line and the environment gave none. Runs before the command's own arguments are parsed, which then win. */
export function applyConfig(cfg: ConfigFile, cmd: Command, file: string): void {
  const entries = cfg.get(pathOf(cmd));
  if (!entries) return;
  for (const [key, { value, line }] of entries) {
    const opt = cmd.options.find((o) => o.long === `--${key}`) as Option | undefined;
    if (!opt) continue;
    const name = opt.attributeName();
    const source = cmd.getOptionValueSource(name);
    if (source === 'cli' || source === 'env') continue;
    if (ENV_OF[key] && process.env[ENV_OF[key]]) continue;
    cmd.setOptionValueWithSource(name, parseValue(opt, key, value, line, file), 'config');
  }
}

/** A value from the file as its option takes it: a flag true or false, else through the option's own parser. */
function parseValue(opt: Option, key: string, value: string, line: number, file: string): unknown {
  if (!opt.required && !opt.optional) {
    if (!/^(true|false|yes|no|on|off|1|0)$/i.test(value)) throw new MailcasError('E_USAGE', `${file} line ${line}: ${key} is a flag: true or false`);
    return /^(true|yes|on|1)$/i.test(value);
  }
  if (opt.argChoices && !opt.argChoices.includes(value)) throw new MailcasError('E_USAGE', `${file} line ${line}: ${key} must be one of ${opt.argChoices.join(', ')}`);
  if (!opt.parseArg) return value;
  try {
    return opt.parseArg(value, undefined as never);
  } catch (e) {
    throw new MailcasError('E_USAGE', `${file} line ${line}: ${(e as Error).message}`);
  }
}
