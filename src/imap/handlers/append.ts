import fs from 'node:fs';
import path from 'node:path';
import { tempName } from '../../util/temp-files.js';
import { argText, type Arg } from '../command-parser.js';
import { No, type SessionState } from '../session-state.js';
import { refresh } from './mailboxes.js';

// APPEND: the message literal streams into a spool file as it arrives (never held in memory), then goes
// through the same verified ingest as every delivery; answered with APPENDUID (RFC 4315)

/** The message of one APPEND on its way in: a spool file, or why it was refused (the bytes are then dropped). */
export class AppendSpool {
  private fd: number | null = null;
  private written = 0;
  readonly file: string | null;
  constructor(
    readonly tag: string,
    readonly size: number,
    readonly refused: string | null,
    dir: string,
  ) {
    this.file = refused ? null : path.join(dir, tempName('append'));
    if (this.file) this.fd = fs.openSync(this.file, 'wx', 0o600);
  }

  /** Writes what arrived (bounded by the literal's announced size). */
  async write(b: Buffer): Promise<void> {
    if (this.fd === null) return;
    await new Promise<void>((resolve, reject) => fs.write(this.fd!, b, 0, b.length, null, (e) => (e ? reject(e) : resolve())));
    this.written += b.length;
  }

  get complete(): boolean {
    return this.fd !== null && this.written === this.size;
  }

  dispose(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    if (this.file) fs.rmSync(this.file, { force: true });
  }
}

/** Why an APPEND of `size` bytes cannot be taken now, or null. */
export function appendRefusal(s: SessionState, size: number): string | null {
  if (s.state === 'not-authenticated') return 'BAD log in first (LOGIN or AUTHENTICATE PLAIN)';
  const max = s.store.config.maxMessageBytes;
  if (size > max) return `NO [TOOBIG] message of ${size} bytes is over the limit of ${max} bytes`;
  if (size === 0) return 'NO empty message (0 bytes): refused';
  return null;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** An IMAP date-time ("17-Jul-1996 02:44:25 -0700") in unix ms. */
function dateTime(text: string): number {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(text);
  const mon = m ? MONTHS.indexOf(m[2].toLowerCase()) : -1;
  if (!m || mon < 0) throw new No('BAD', `bad date-time ${JSON.stringify(text)} (like "17-Jul-1996 02:44:25 -0700")`);
  const offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  return Date.UTC(Number(m[3]), mon, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - offset * 60_000;
}

/** APPEND mailbox [(flags)] [date-time] message: answers the tagged line's code. */
export async function append(s: SessionState, args: Arg[], spool: AppendSpool | null): Promise<string> {
  if (!spool) throw new No('BAD', 'APPEND needs a message literal');
  if (spool.refused) throw new No(spool.refused.startsWith('BAD') ? 'BAD' : 'NO', spool.refused.replace(/^(NO|BAD) /, ''));
  if (!spool.complete) throw new No('NO', 'the message literal was cut short');
  const name = argText(args[0]);
  if (name === null) throw new No('BAD', 'APPEND needs a mailbox');
  const box = s.store.mail.info(s.user!, name);
  if (!box) throw new No('NO', `[TRYCREATE] no mailbox ${name}`);
  let k = 1;
  let flags: string[] = [];
  if (Array.isArray(args[k])) flags = (args[k++] as Arg[]).map((a) => argText(a) ?? '').filter(Boolean);
  let received: number | undefined;
  if (k < args.length - 1) {
    const d = argText(args[k]);
    if (d !== null) received = dateTime(d);
  }
  const [r] = await s.store.deliver({ path: spool.file! }, [{ user: s.user!, mailbox: box.name, flags }], { received });
  if (!r.ok) throw r.error;
  if (s.selected?.name === box.name) await refresh(s);
  return `[APPENDUID ${box.uidValidity} ${r.result.id}]`;
}
