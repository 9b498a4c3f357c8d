import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { once } from 'node:events';
import type { Store } from '../store.js';
import type { Logger } from '../util/logger.js';
import type { PasswordFile } from './passwd.js';
import { ImapSession } from './session.js';
import { AnswerCache } from './answer-cache.js';
import { ReadAhead } from './read-ahead.js';
import { DEFAULT_CONNECTIONS_PER_ADDRESS, IMAP_AUTH_FAILURE_DELAY_MS, IMAP_FETCH_AHEAD_SESSION_BYTES, IMAP_FETCH_AHEAD_TOTAL_BYTES } from '../limits.js';
import { ImapConnection } from './imap-connection.js';

export interface ImapServiceOptions {
  passwd: PasswordFile;
  log: Logger;
  /** Sessions at once; more are greeted with BYE. */
  maxSessions?: number;
  /** Sessions one remote address may hold at once (DEFAULT_CONNECTIONS_PER_ADDRESS); more are greeted with BYE. */
  maxPerAddress?: number;
  /** A failed login is answered this long after it arrived (IMAP_AUTH_FAILURE_DELAY_MS). */
  authFailureDelayMs?: number;
  /** Idle time before an authenticated session is logged out (RFC 3501: at least 30 minutes). */
  idleMs?: number;
  /** Time to log in. */
  loginMs?: number;
  fetchWindow?: number;
  /** A certificate and its key (PEM): STARTTLS on the plain listener, and listenTls for IMAPS. */
  tls?: { cert: Buffer; key: Buffer };
  /** Logins in clear from other hosts than this one (default: refused, LOGINDISABLED, until TLS is in place). */
  allowPlaintext?: boolean;
}

/** Whether a remote address is this host (IPv4 127/8, ::1, IPv4-mapped loopback), where a login in clear crosses no network. */
export function isLoopback(addr: string): boolean {
  return addr === '::1' || /^(::ffff:)?127\./.test(addr);
}


/** `mailcas imap`: the IMAP4rev1 front over TCP or a Unix socket, and IMAPS. */
export class ImapService {
  readonly server: net.Server;
  private tlsServer: tls.Server | null = null;
  private readonly secureContext: tls.SecureContext | null;
  private readonly conns = new Map<net.Socket, ImapConnection>();
  private readonly sockets = new Set<net.Socket>();
  private readonly perAddress = new Map<string, number>();
  private readonly cache = new AnswerCache();
  /** Message bytes read ahead by all sessions together (FETCH), bounded. */
  private readonly ahead = new ReadAhead(IMAP_FETCH_AHEAD_TOTAL_BYTES);

  constructor(
    private readonly store: Store,
    private readonly opts: ImapServiceOptions,
  ) {
    this.server = net.createServer((s) => this.onConnection(s, false));
    this.secureContext = opts.tls ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key }) : null;
  }

  /** IMAPS: TLS from the first byte (RFC 8314), on a listener of its own. */
  async listenTls(where: { host: string; port: number }): Promise<string> {
    if (!this.opts.tls) throw new Error('IMAPS needs a certificate and a key');
    const srv = tls.createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, (s) => this.onConnection(s, true));
    srv.on('tlsClientError', () => undefined);
    this.tlsServer = srv;
    srv.listen(where.port, where.host);
    await once(srv, 'listening');
    const a = srv.address();
    return typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a);
  }

  async listen(where: { host: string; port: number } | { socket: string }): Promise<string> {
    if ('socket' in where) {
      fs.rmSync(where.socket, { force: true });
      this.server.listen(where.socket);
    } else this.server.listen(where.port, where.host);
    await once(this.server, 'listening');
    const a = this.server.address();
    return typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a);
  }

  async close(): Promise<void> {
    const closed = Promise.all([new Promise<void>((r) => this.server.close(() => r())), this.tlsServer ? new Promise<void>((r) => this.tlsServer!.close(() => r())) : null]);
    for (const s of this.sockets) {
      // through TLS where the connection speaks it
      const now = this.conns.get(s)?.current ?? s;
      now.end('* BYE mailcas IMAP shutting down\r\n');
      setTimeout(() => s.destroy(), 2000).unref();
    }
    await closed;
  }

  /** Ends a connection with a last line; a peer that does not close its side is cut off shortly after (its slot freed). */
  private hangUp(socket: net.Socket, line: string | Buffer): void {
    socket.end(line);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private onConnection(socket: net.Socket, secure: boolean): void {
    const log = this.opts.log;
    socket.on('error', () => socket.destroy());
    if (this.sockets.size >= (this.opts.maxSessions ?? 1000)) return this.hangUp(socket, '* BYE too many sessions, try again later\r\n');
    const addr = socket.remoteAddress ?? '';
    const fromHere = this.perAddress.get(addr) ?? 0;
    if (fromHere >= (this.opts.maxPerAddress ?? DEFAULT_CONNECTIONS_PER_ADDRESS)) return this.hangUp(socket, '* BYE too many sessions from your address, try again later\r\n');
    this.perAddress.set(addr, fromHere + 1);
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.conns.delete(socket);
      const n = (this.perAddress.get(addr) ?? 1) - 1;
      if (n > 0) this.perAddress.set(addr, n);
      else this.perAddress.delete(addr);
    });
    const conn = new ImapConnection(socket, { loginMs: this.opts.loginMs ?? 60_000, idleMs: this.opts.idleMs ?? 30 * 60_000 }, log, (_sock, last) => this.hangUp(conn.current, last));
    this.conns.set(socket, conn);
    const ctx = this.secureContext;
    const io = ctx ? { ...conn.io, startTls: (line: string) => conn.startTls(ctx, line) } : conn.io;
    const session = new ImapSession(this.store, io, {
      transport: { secure, canStartTls: !!ctx, plaintextOk: !!this.opts.allowPlaintext || addr === '' || isLoopback(addr) },
      passwd: this.opts.passwd,
      log,
      fetchWindow: this.opts.fetchWindow,
      cache: this.cache,
      ahead: this.ahead.forSession(IMAP_FETCH_AHEAD_SESSION_BYTES),
      authFailureDelayMs: this.opts.authFailureDelayMs ?? IMAP_AUTH_FAILURE_DELAY_MS,
    });
    conn.start(session);
  }
}
