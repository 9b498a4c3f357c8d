/**
 * What the IMAP session and its command handlers share: the session's
 * state as the handlers see it, its I/O and options, and the answers a
 * handler throws (No: a tagged NO or BAD; Pending: the handler answered
 * itself; Fatal: the connection cannot go on).
 */
import type { Store } from '../store.js';
import type { Logger } from '../util/logger.js';
import type { PasswordFile } from './passwd.js';
import type { AnswerCache } from './answer-cache.js';
import type { SessionReadAhead } from './read-ahead.js';
import { toWire } from '../fetch/wire.js';

export interface SessionIo {
  /** Queues bytes; resolves when more may be queued (what is queued goes out in large writes). */
  write(b: Buffer | string): Promise<void>;
  /** Sends what is queued (the end of a response). */
  flush(): Promise<void>;
  /** STARTTLS: sends `line` (the tagged OK), then the connection speaks TLS; input sent before the handshake is dropped. */
  startTls?(line: string): Promise<void>;
}

/** The connection's transport as a session sees it. */
export interface SessionTransport {
  /** TLS is in place (the IMAPS port, or after STARTTLS). */
  secure: boolean;
  /** STARTTLS is offered (a certificate was given and TLS is not in place yet). */
  canStartTls: boolean;
  /** The client is on loopback, or plaintext logins are allowed (--allow-plaintext). */
  plaintextOk: boolean;
}

export interface SessionOptions {
  passwd: PasswordFile;
  log: Logger;
  /** Messages read ahead while earlier ones of a FETCH go out. */
  fetchWindow?: number;
  cache?: AnswerCache;
  /** This session's share of the bytes FETCH may read ahead of the socket (unbounded without one). */
  ahead?: SessionReadAhead;
  /** A failed login is answered this long after it arrived (default: at once). */
  authFailureDelayMs?: number;
  /** TLS and plaintext logins (default: no TLS, plaintext allowed). */
  transport?: SessionTransport;
}

export const CAPABILITIES = 'IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN ID NAMESPACE BINARY UNSELECT ENABLE IDLE UIDPLUS MOVE CONDSTORE QRESYNC SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED STATUS=SIZE';

/** What a session offers now: STARTTLS before TLS where it can, LOGINDISABLED (and no AUTH=) while a login would go in clear. */
export function capabilities(t: SessionTransport | undefined): string {
  if (!t) return CAPABILITIES;
  const loginOk = t.secure || t.plaintextOk;
  const caps = loginOk ? CAPABILITIES : `${CAPABILITIES.replace(' AUTH=PLAIN', '')} LOGINDISABLED`;
  return t.canStartTls && !t.secure ? `${caps} STARTTLS` : caps;
}

export const DELIMITER = '/';

export class No extends Error {
  constructor(
    readonly kind: 'NO' | 'BAD',
    message: string,
  ) {
    super(message);
  }
}

/** The selected mailbox as this session last told its client. */
export interface Selected {
  name: string;
  /** UIDs, ascending: index + 1 is the sequence number. */
  uids: number[];
  /** Flags and modseq of each message by UID. */
  flags: Map<number, string[]>;
  modseqs: Map<number, number>;
  /** The mailbox's HIGHESTMODSEQ when the session last caught up (refresh). */
  modseq: number;
  /** EXAMINE: nothing changes it (not even \Seen on a FETCH of a body). */
  readOnly: boolean;
}

/** Thrown by a command that has answered (or will answer) its tag itself. */
export class Pending extends Error {}

/** A failure part way through a response (a literal announced and not sent whole): the session cannot go on. */
export class Fatal extends Error {}

export function mailboxWire(name: string): string {
  return toWire(name).toString('latin1');
}

/** The session as its command handlers see it. */
export interface SessionState {
  readonly store: Store;
  readonly io: SessionIo;
  readonly opts: SessionOptions;
  state: 'not-authenticated' | 'authenticated' | 'selected' | 'logout';
  user: string | null;
  selected: Selected | null;
  loginFailures: number;
  /** CONDSTORE enabled (ENABLE, SELECT (CONDSTORE), a MODSEQ fetch or UNCHANGEDSINCE): flag changes carry MODSEQ. */
  condstore: boolean;
  /** QRESYNC enabled: expunges are announced as VANISHED. */
  qresync: boolean;
  /** The connection closed: a command still running stops at its next message. */
  readonly gone: boolean;
}
