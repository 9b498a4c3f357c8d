import type { MessageRow } from '../meta/messages.js';
import { flagNames, fromColumns } from './flags.js';

/** A message as the listing calls give it: from the metadata alone. */
export interface MessageRecord {
  id: string;
  user: string;
  mailbox: string;
  size: number;
  hash: string;
  received: number;
  subject: string | null;
  from: string | null;
  date: string | null;
  messageId: string | null;
  /** IMAP flags and keywords (\\Seen, $Junk...). */
  flags: string[];
}

/** A message row as the listing calls give it. */
export function toRecord(r: MessageRow): MessageRecord {
  return {
    id: String(r.id),
    user: r.user,
    mailbox: r.mailbox,
    size: r.size,
    hash: r.hash.toString('hex'),
    received: r.received,
    subject: r.subject,
    from: r.from_addr,
    date: r.date,
    messageId: r.message_id,
    flags: flagNames(fromColumns(r.flags ?? 0, r.keywords ?? null)),
  };
}
