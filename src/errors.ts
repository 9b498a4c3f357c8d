/**
 * Typed errors with stable string codes. Callers branch on `code`, never on
 * the message. `transient` says whether retrying later may succeed: the LMTP
 * and LDA edges map transient errors to 4xx / EX_TEMPFAIL (75).
 */
export type ErrorCode =
  | 'E_USAGE' // bad arguments from the caller
  | 'E_NOT_FOUND' // no such message / blob
  | 'E_SOURCE' // an input entry cannot be read: missing, unreadable, not a regular file
  | 'E_TOO_LARGE' // input exceeds a stated limit
  | 'E_REFUSED' // input refused for what it is (an empty message)
  | 'E_INTEGRITY' // bytes do not hash to what they should
  | 'E_SHORT_WRITE' // a source delivered fewer/more bytes than declared
  | 'E_BACKEND' // blob backend failure (I/O, network)
  | 'E_CORRUPT' // stored metadata cannot be decoded
  | 'E_CLOSED' // store used after close
  | 'E_BUSY' // the metadata database stayed locked past the busy timeout (transient)
  | 'E_LEASE_LOST' // an ingest's leases were reclaimed before it committed (transient: retry)
  | 'E_STORE' // the store itself cannot be used: damaged or unwritable database, unusable directory
  | 'E_INTERNAL'; // a bug: an invariant did not hold

export class MailcasError extends Error {
  readonly code: ErrorCode;
  readonly transient: boolean;
  readonly data: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, opts: { transient?: boolean; cause?: unknown; data?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MailcasError';
    this.code = code;
    this.transient = opts.transient ?? (code === 'E_BACKEND' || code === 'E_BUSY' || code === 'E_LEASE_LOST');
    this.data = opts.data ?? {};
  }
}

export function isMailcasError(e: unknown, code?: ErrorCode): e is MailcasError {
  return e instanceof MailcasError && (code === undefined || e.code === code);
}
