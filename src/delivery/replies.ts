import { MailcasError } from '../errors.js';

/** An SMTP/LMTP reply: code, enhanced status (RFC 3463) and text. */
export interface Reply {
  code: number;
  text: string;
}

/**
 * The reply for a delivery that failed. Only the message itself can be
 * refused permanently (over a stated limit: 552; empty: 554); everything
 * else, a backend outage, a busy store, lost leases, a damaged store or a
 * bug, is temporary (451): the MTA keeps the message and retries, so
 * nothing is bounced for a fault of ours.
 */
export function replyFor(e: unknown): Reply {
  if (e instanceof MailcasError) {
    if (e.code === 'E_TOO_LARGE') return { code: 552, text: `5.3.4 ${e.message}` };
    if (e.code === 'E_REFUSED') return { code: 554, text: `5.6.0 ${e.message}` };
    if (e.code === 'E_BACKEND') return { code: 451, text: `4.3.0 temporary storage failure, try again later: ${e.message}` };
    if (e.transient) return { code: 451, text: `4.3.0 temporary failure, try again later: ${e.message}` };
    return { code: 451, text: `4.3.0 local problem (${e.code}), try again later: ${e.message}` };
  }
  return { code: 451, text: `4.3.0 local problem, try again later: ${(e as Error)?.message ?? String(e)}` };
}

/** The LDA's exit code for the same failures (sysexits, as MTAs expect). */
export function exitFor(e: unknown): number {
  if (e instanceof MailcasError) {
    if (e.code === 'E_TOO_LARGE' || e.code === 'E_REFUSED') return 65; // EX_DATAERR
    if (e.transient) return 75; // EX_TEMPFAIL
    if (e.code === 'E_STORE') return 74; // EX_IOERR: the MTA defers
    if (e.code === 'E_USAGE') return 64;
  }
  return 75; // anything else: never bounce mail for our own fault
}
