import net from 'node:net';
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
}


/** `mailcas imap`: the read-only IMAP4rev1 front over TCP or a Unix socket. */
export class ImapService {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly perAddress = new Map<string, number>();
  private readonly cache = new AnswerCache();
  /** Message bytes read ahead by all sessions together (FETCH), bounded. */
  private readonly ahead = new ReadAhead(IMAP_FETCH_AHEAD_TOTAL_BYTES);

  constructor(
    private readonly store: Store,
    private readonly opts: ImapServiceOptions,
  ) {
    this.server = net.createServer((s) => this.onConnection(s));
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
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) {
      s.end('* BYE mailcas IMAP shutting down\r\n');
      setTimeout(() => s.destroy(), 2000).unref();
    }
    await closed;
  }

  /** Ends a connection with a last line; a peer that does not close its side is cut off shortly after (its slot freed). */
  private hangUp(socket: net.Socket, line: string | Buffer): void {
    socket.end(line);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private onConnection(socket: net.Socket): void {
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
      const n = (this.perAddress.get(addr) ?? 1) - 1;
      if (n > 0) this.perAddress.set(addr, n);
      else this.perAddress.delete(addr);
    });
    const conn = new ImapConnection(socket, { loginMs: this.opts.loginMs ?? 60_000, idleMs: this.opts.idleMs ?? 30 * 60_000 }, log, (sock, last) => this.hangUp(sock, last));
    const session = new ImapSession(this.store, conn.io, {
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
