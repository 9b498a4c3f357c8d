import net from 'node:net';
import fs from 'node:fs';
import { once } from 'node:events';
import type { Store } from '../store.js';
import type { Logger } from '../util/logger.js';
import { CommandError, CommandFramer, parseCommand } from './command-parser.js';
import type { PasswordFile } from './passwd.js';
import { ImapSession } from './session.js';
import { AnswerCache } from './answer-cache.js';
import { ReadAhead } from './read-ahead.js';
import {
  DEFAULT_CONNECTIONS_PER_ADDRESS,
  IMAP_AUTH_FAILURE_DELAY_MS,
  IMAP_BAD_COMMANDS_MAX,
  IMAP_FETCH_AHEAD_SESSION_BYTES,
  IMAP_FETCH_AHEAD_TOTAL_BYTES,
  IMAP_INPUT_BUFFER_BYTES,
  IMAP_LOGIN_FAILURES_MAX,
} from '../limits.js';

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
    socket.setNoDelay(true);
    // responses are gathered into writes of up to 64 KiB: one segment per small response, not one per piece
    let queued: Buffer[] = [];
    let queuedBytes = 0;
    const send = (): Promise<void> =>
      new Promise((resolve) => {
        const b = queued.length === 1 ? queued[0] : Buffer.concat(queued, queuedBytes);
        queued = [];
        queuedBytes = 0;
        if (socket.destroyed || !b.length) return resolve();
        const done = (): void => {
          progress();
          resolve();
        };
        if (socket.write(b)) done();
        else socket.once('drain', done).once('close', resolve);
      });
    const io = {
      write: async (b: Buffer | string): Promise<void> => {
        const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
        if (buf.length >= 16 * 1024) {
          // a large piece goes out as it is, after what is queued: no copy
          if (queuedBytes) await send();
          queued.push(buf);
          queuedBytes = buf.length;
          return send();
        }
        queued.push(buf);
        queuedBytes += buf.length;
        return queuedBytes >= 64 * 1024 ? send() : undefined;
      },
      flush: send,
    };
    const session = new ImapSession(this.store, io, {
      passwd: this.opts.passwd,
      log,
      fetchWindow: this.opts.fetchWindow,
      cache: this.cache,
      ahead: this.ahead.forSession(IMAP_FETCH_AHEAD_SESSION_BYTES),
      authFailureDelayMs: this.opts.authFailureDelayMs ?? IMAP_AUTH_FAILURE_DELAY_MS,
    });
    const framer = new CommandFramer();
    let busy = false;
    let over = false;
    let timer: NodeJS.Timeout | null = null;
    /** The last line, after what is queued; never waits for a client that does not read (it is cut off a second later). */
    const bye = (line: string): void => {
      over = true;
      framer.clear(); // what the client sent after this is never read
      const last = Buffer.concat([...queued, Buffer.from(line, 'latin1')]);
      queued = [];
      queuedBytes = 0;
      this.hangUp(socket, last);
    };
    // the time to log in counts from the connection, whatever is sent meanwhile; once logged in, idle time counts
    // from the end of the last command, and while one runs (a long FETCH to a client that reads slowly, or not at
    // all) from the last time its output moved
    const loginBy = Date.now() + (this.opts.loginMs ?? 60_000);
    let running = false;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      const login = session.state === 'not-authenticated';
      const ms = login ? Math.max(0, loginBy - Date.now()) : (this.opts.idleMs ?? 30 * 60_000);
      timer = setTimeout(() => bye(login ? '* BYE no login in time\r\n' : running ? '* BYE not reading for too long\r\n' : '* BYE idle for too long\r\n'), ms);
      timer.unref();
    };
    function progress(): void {
      if (running && session.state !== 'not-authenticated') arm();
    }
    socket.on('close', () => {
      over = true;
      framer.clear();
      if (timer) clearTimeout(timer);
      session.ended();
    });
    /** Input is read while the framer holds little; a flood waits in the kernel, not here. */
    let reading = true;
    const flowControl = (): void => {
      const want = !over && framer.buffered < IMAP_INPUT_BUFFER_BYTES;
      if (want && !reading) socket.resume();
      if (!want && reading) socket.pause();
      reading = want;
    };
    // commands run one at a time, in order; bytes that arrive meanwhile wait in the framer
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        while (!over) {
          const ev = framer.next();
          if (!ev) break;
          if (ev.kind === 'error') return bye(`* BYE ${ev.message}\r\n`);
          if (ev.kind === 'continue') {
            await io.write('+ go ahead\r\n');
            await io.flush();
            continue;
          }
          running = true;
          arm();
          let cmd;
          if (session.awaitingSasl) await session.saslResponse(ev.bytes.toString('latin1'));
          else try {
            cmd = parseCommand(ev.bytes);
          } catch (e) {
            const ce = e as CommandError;
            session.badCommands++; // unparseable lines count like any other BAD
            await io.write(`${ce.tag ?? '*'} BAD ${ce.message}\r\n`);
            await io.flush();
          }
          if (cmd) {
            try {
              await session.handle(cmd);
            } catch (e) {
              // a failure while a literal was going out: the client cannot resync, close the connection
              log.warn('imap-session-aborted', { user: session.user, error: (e as Error).message });
              socket.destroy();
              return;
            }
          }
          running = false;
          arm();
          if (session.state === 'logout') return void this.hangUp(socket, '');
          if (session.badCommands > IMAP_BAD_COMMANDS_MAX) return bye(`* BYE too many bad commands (the limit is ${IMAP_BAD_COMMANDS_MAX})\r\n`);
          if (session.loginFailures >= IMAP_LOGIN_FAILURES_MAX) return bye(`* BYE too many failed logins (the limit is ${IMAP_LOGIN_FAILURES_MAX})\r\n`);
          // other sessions get their turn between two commands of this one, even when every write completes at once
          await new Promise((r) => setImmediate(r));
          flowControl();
        }
      } finally {
        busy = false;
        flowControl();
      }
    };
    socket.on('data', (d: Buffer) => {
      if (over) return;
      framer.push(d);
      flowControl();
      void pump();
    });
    arm();
    void session.greeting();
  }
}
