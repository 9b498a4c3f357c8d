import { MailcasError } from '../errors.js';

/** Mailbox names are at most this many characters (a path of names joined by "/"). */
export const MAILBOX_NAME_MAX = 255;

export function isInbox(name: string): boolean {
  return name.toUpperCase() === 'INBOX';
}

/**
 * A mailbox name as the store keeps it (INBOX in capitals), or E_USAGE: not
 * empty, no empty level ("a//b", a leading or trailing "/"), no wildcards
 * (* %), no control characters, at most MAILBOX_NAME_MAX characters.
 */
export function checkMailboxName(name: string): string {
  if (isInbox(name)) return 'INBOX';
  const why =
    !name ? 'empty' :
    name.length > MAILBOX_NAME_MAX ? `longer than ${MAILBOX_NAME_MAX} characters` :
    /[\x00-\x1f\x7f]/.test(name) ? 'a control character' :
    /[*%]/.test(name) ? 'a wildcard (* or %)' :
    name.split('/').some((l) => l === '') ? 'an empty level (a leading, trailing or doubled /)' :
    null;
  if (why) throw new MailcasError('E_USAGE', `bad mailbox name ${JSON.stringify(name.slice(0, 64))}: ${why}`);
  return name;
}

/** RFC 6154 special uses, as written there. */
export const SPECIAL_USES = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash'];

/** A special-use attribute as RFC 6154 writes it (any case, the backslash optional), or E_REFUSED (IMAP: NO [USEATTR]). */
export function checkSpecialUse(u: string): string {
  const found = SPECIAL_USES.find((x) => x.toLowerCase() === u.toLowerCase() || x.slice(1).toLowerCase() === u.toLowerCase());
  if (!found) throw new MailcasError('E_REFUSED', `not a special use: ${u.slice(0, 40)} (${SPECIAL_USES.join(' ')})`, { data: { imap: 'USEATTR' } });
  return found;
}
