import fs from 'node:fs';
import { MailcasError } from '../errors.js';

/** The text of a file an operator names (config, user map, tokens, passwords); unreadable: a usage error that names it. */
export function readOperatorFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new MailcasError('E_USAGE', `cannot read the ${what} ${file}: ${(e as Error).message}`);
  }
}
