import fs from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Store } from '../store.js';
import type { RecipientResult } from '../types.js';
import { mapRecipient, type RecipientRules } from './recipients.js';
import { replyFor } from './replies.js';
import { DataLimiter, type DataLimits } from './data-limits.js';
import { DEFAULT_LMTP_LIMITS, DEFAULT_MAX_RECIPIENTS, LMTP_MAX_FAILED_RECIPIENTS } from '../limits.js';
import { withDeliveryHeaders } from './delivery-headers.js';
import { installDataFeed } from './data-feed.js';
import { installSizeReply } from './size-reply.js';

export interface LmtpOptions {
  rules?: RecipientRules;
  /** Recipients one transaction may name (452 past it). */
  maxRecipients?: number;
  /** Advertised with SIZE and enforced (552). */
  maxMessageBytes: number;
  limits?: Partial<DataLimits>;
  /** Prepend Return-Path (and Delivered-To for a single recipient) as other LDAs do; off: store exactly the DATA bytes. */
  addHeaders?: boolean;
  /** The name in the greeting (default: os.hostname()). */
  hostname?: string;
  /** One line per delivery. */
  log?: (line: Record<string, unknown>) => void;
  /** A session idle this long is closed with 421 (default 5 minutes, RFC 5321's minimum for most commands). */
  idleTimeoutMs?: number;
  /** Sessions at once; more are refused with 421 (default 1000). */
  maxSessions?: number;
}

export { DEFAULT_LMTP_LIMITS, DEFAULT_MAX_RECIPIENTS };

const err = (code: number, text: string): Error & { responseCode: number } => Object.assign(new Error(text), { responseCode: code });

/**
 * An LMTP server (RFC 2033) in front of a Store: a message to many local
 * recipients is spooled, split and verified once, its parts stored once,
 * with one message record per recipient; one reply per accepted recipient,
 * 250 only once that recipient's copy is durable. Unknown recipients get 550
 * at RCPT (with a user map), a refused message 552/554 naming the limit,
 * everything temporary 451. Large messages are split in worker threads
 * (the Store's), so other sessions go on meanwhile.
 */
export class LmtpService {
  readonly server: SMTPServer;
  private inFlight = 0;
  private idle: (() => void) | null = null;
  private closing = false;
  private readonly limits: DataLimits;
  private readonly maxRecipients: number;
  /** Unknown recipients refused per session. */
  private readonly failedRcpts = new WeakMap<SMTPServerSession, number>();

  constructor(
    private readonly store: Store,
    private readonly opts: LmtpOptions,
  ) {
    installDataFeed();
    installSizeReply();
    this.limits = { ...DEFAULT_LMTP_LIMITS, ...opts.limits };
    this.maxRecipients = opts.maxRecipients ?? DEFAULT_MAX_RECIPIENTS;
    this.server = new SMTPServer({
      lmtp: true,
      name: opts.hostname,
      banner: 'mailcas',
      size: opts.maxMessageBytes,
      // (a message over the limit gets our own 552 5.3.4 naming it, per recipient: see onData)
      rejectOversized: false,
      disableReverseLookup: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      authOptional: true,
      logger: false,
      closeTimeout: 200,
      socketTimeout: opts.idleTimeoutMs ?? 5 * 60_000,
      maxClients: opts.maxSessions ?? 1000,
      onMailFrom: (_addr, _session, cb) => cb(this.closing ? err(421, '4.3.2 shutting down, try again later') : undefined),
      onRcptTo: (address, session, cb) => {
        if (session.envelope.rcptTo.length >= this.maxRecipients) {
          return cb(err(452, `4.5.3 too many recipients (the limit is ${this.maxRecipients} per transaction)`));
        }
        if (!mapRecipient(address.address, opts.rules)) {
          // unknown recipients are counted per session: the user map is not for probing (421 closes the session)
          const failed = (this.failedRcpts.get(session) ?? 0) + 1;
          this.failedRcpts.set(session, failed);
          if (failed > LMTP_MAX_FAILED_RECIPIENTS) return cb(err(421, `4.7.0 too many unknown recipients in this session (the limit is ${LMTP_MAX_FAILED_RECIPIENTS}), closing`));
          return cb(err(550, `5.1.1 <${address.address}>: no such user here`));
        }
        cb();
      },
      onData: (stream, session, cb) => void this.onData(stream, session, cb),
    });
    this.server.on('error', (e) => opts.log?.({ event: 'lmtp-error', error: e.message }));
  }

  /** Listens on HOST:PORT (port 0: any free port) or a Unix socket path; resolves to the address. */
  async listen(where: { host: string; port: number } | { socket: string }): Promise<string> {
    if ('socket' in where) {
      fs.rmSync(where.socket, { force: true }); // a socket left by a previous run
      this.server.listen(where.socket);
      await once(this.server.server, 'listening');
      fs.chmodSync(where.socket, 0o666); // the MTA's delivery agent runs as its own user
      return where.socket;
    }
    this.server.listen(where.port, where.host);
    await once(this.server.server, 'listening');
    const a = this.server.server.address();
    return typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a);
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: (string | Error)[]) => void): Promise<void> {
    this.inFlight++;
    const t0 = Date.now();
    const rcpts = session.envelope.rcptTo.map((r) => ({ address: r.address, to: mapRecipient(r.address, this.opts.rules)! }));
    let results: RecipientResult[];
    try {
      const limiter = new DataLimiter(this.limits);
      stream.on('error', (e) => limiter.destroy(e));
      const limited: Readable = stream.pipe(limiter);
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const input = this.opts.addHeaders ? withDeliveryHeaders(limited, from, rcpts.length === 1 ? rcpts[0].address : null) : limited;
      results = await this.store.deliver(input, rcpts.map((r) => r.to));
    } catch (e) {
      results = rcpts.map(() => ({ ok: false, error: e as Error }));
    }
    // the client goes on only once the whole DATA has been read: drain what a refusal left unread
    if (!stream.readableEnded) {
      stream.unpipe();
      stream.resume();
      await once(stream, 'end').catch(() => {});
    }
    const replies = results.map((r, i) => {
      if (r.ok) return `2.0.0 <${rcpts[i].address}> stored as message ${r.result.id}${r.result.skipped ? ' (already there)' : ''}`;
      if (stream.sizeExceeded) return err(552, `5.3.4 message exceeds the size limit of ${this.opts.maxMessageBytes} bytes`);
      const rep = replyFor(r.error);
      return err(rep.code, rep.text);
    });
    const stored = results.find((r) => r.ok);
    this.opts.log?.({
      event: 'lmtp-delivery',
      session: session.id,
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      size: stored?.ok ? stored.result.size : stream.byteLength,
      rcpts: results.map((r, i) => ({ rcpt: rcpts[i].address, user: rcpts[i].to.user, mailbox: rcpts[i].to.mailbox, ...(r.ok ? { id: r.result.id } : { error: (r.error as Error).message }) })),
      ms: Date.now() - t0,
    });
    cb(null, replies);
    if (--this.inFlight === 0 && this.idle) this.idle();
  }

  /**
   * Stops accepting connections and transactions, lets those in flight
   * finish (their replies are sent), then closes the remaining connections
   * (421) and resolves. The store is the caller's to close.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.server.server.close();
    if (this.inFlight) await new Promise<void>((r) => (this.idle = r));
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
