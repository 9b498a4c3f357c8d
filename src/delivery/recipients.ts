import { MailcasError } from '../errors.js';
import { readOperatorFile } from '../util/operator-file.js';

/** Where a recipient's copy goes. */
export interface Mailbox {
  user: string;
  mailbox: string;
}

export interface RecipientRules {
  /** 'local' (default): the local part, lower-cased; 'address': the whole address, lower-cased (multi-domain hosting). */
  userFormat?: 'local' | 'address';
  /** e.g. '+': u1+lists@example.org goes to user u1, mailbox lists. */
  delimiter?: string;
  /** A user map (see loadUserMap): only the addresses it lists are delivered to. */
  users?: Map<string, { user: string; mailbox?: string }>;
  /** Mailbox when the address names none (default INBOX). */
  defaultMailbox?: string;
}

/**
 * Maps a recipient address to a user and mailbox, or null for an unknown
 * recipient (only possible with a user map). Pure: no I/O.
 */
export function mapRecipient(address: string, rules: RecipientRules = {}): Mailbox | null {
  const addr = address.trim().replace(/^<|>$/g, '').toLowerCase();
  const at = addr.lastIndexOf('@');
  let local = at >= 0 ? addr.slice(0, at) : addr;
  const domain = at >= 0 ? addr.slice(at + 1) : '';
  let detail: string | null = null;
  if (rules.delimiter) {
    const d = local.indexOf(rules.delimiter);
    if (d > 0) {
      detail = local.slice(d + rules.delimiter.length);
      local = local.slice(0, d);
    }
  }
  const base = domain ? `${local}@${domain}` : local;
  const fallbackMailbox = detail || rules.defaultMailbox || 'INBOX';
  if (rules.users) {
    const hit = rules.users.get(addr) ?? rules.users.get(base);
    if (!hit) return null;
    return { user: hit.user, mailbox: hit.mailbox ?? fallbackMailbox };
  }
  if (!local) return null;
  return { user: rules.userFormat === 'address' ? base : local, mailbox: fallbackMailbox };
}

/**
 * Reads a user map: one `address user [mailbox]` per line; blank lines and
 * lines starting with # are ignored. Addresses are matched lower-cased.
 */
export function loadUserMap(file: string): Map<string, { user: string; mailbox?: string }> {
  const text = readOperatorFile(file, 'user map');
  const map = new Map<string, { user: string; mailbox?: string }>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const f = line.split(/\s+/);
    if (f.length < 2 || f.length > 3) throw new MailcasError('E_USAGE', `${file}:${i + 1}: expected "address user [mailbox]"`);
    map.set(f[0].toLowerCase(), { user: f[1], ...(f[2] ? { mailbox: f[2] } : {}) });
  });
  return map;
}
