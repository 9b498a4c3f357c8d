import net from 'node:net';
import fs from 'node:fs';
import { once } from 'node:events';
import type { Store } from '../store.js';
import type { Logger } from '../util/logger.js';
import { CommandError, CommandFramer, parseCommand } from './command-parser.js';
import type { PasswordFile } from './passwd.js';
import { AnswerCache, ImapSession } from './session.js';

export interface ImapServiceOptions {
  passwd: PasswordFile;
  log: Logger;
  /** Sessions at once; more are greeted with BYE. */
  maxSessions?: number;
  /** Idle time before an authenticated session is logged out (RFC 3501: at least 30 minutes). */
  idleMs?: number;
  /** Time to log in. */
  loginMs?: number;
  fetchWindow?: number;
}

/** Protocol errors (BAD answers) tolerated per session before it is closed. */
const BAD_COMMANDS_MAX = 20;

/** `mailcas imap`: the read-only IMAP4rev1 front over TCP or a Unix socket. */
export class ImapService {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly cache = new AnswerCache();

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

  private onConnection(socket: net.Socket): void {
    const log = this.opts.log;
    if (this.sockets.size >= (this.opts.maxSessions ?? 1000)) {
      socket.end('* BYE too many sessions, try again later\r\n');
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
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
        if (socket.write(b)) resolve();
        else socket.once('drain', resolve).once('close', resolve);
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
    const session = new ImapSession(this.store, io, { passwd: this.opts.passwd, log, fetchWindow: this.opts.fetchWindow, cache: this.cache });
    const framer = new CommandFramer();
    let busy = false;
    let timer: NodeJS.Timeout | null = null;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      const ms = session.state === 'not-authenticated' ? (this.opts.loginMs ?? 60_000) : (this.opts.idleMs ?? 30 * 60_000);
      timer = setTimeout(() => {
        socket.end('* BYE idle for too long\r\n');
      }, ms);
      timer.unref();
    };
    socket.on('close', () => timer && clearTimeout(timer));
    // commands run one at a time, in order; bytes that arrive meanwhile wait in the framer
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          const ev = framer.next();
          if (!ev) break;
          if (ev.kind === 'error') {
            await io.write(`* BYE ${ev.message}\r\n`);
            await io.flush();
            socket.end();
            return;
          }
          if (ev.kind === 'continue') {
            await io.write('+ go ahead\r\n');
            await io.flush();
            continue;
          }
          arm();
          if (session.awaitingSasl) {
            await session.saslResponse(ev.bytes.toString('latin1'));
            continue;
          }
          let cmd;
          try {
            cmd = parseCommand(ev.bytes);
          } catch (e) {
            const ce = e as CommandError;
            session.badCommands++;
            await io.write(`${ce.tag ?? '*'} BAD ${ce.message}\r\n`);
            await io.flush();
            continue;
          }
          socket.pause(); // no more input buffered while a command runs (a FETCH may take a while)
          try {
            await session.handle(cmd);
          } catch (e) {
            // a failure while a literal was going out: the client cannot resync, close the connection
            log.warn('imap-session-aborted', { user: session.user, error: (e as Error).message });
            socket.destroy();
            return;
          } finally {
            socket.resume();
          }
          if (session.state === 'logout') {
            socket.end();
            return;
          }
          if (session.badCommands > BAD_COMMANDS_MAX) {
            await io.write('* BYE too many bad commands\r\n');
            await io.flush();
            socket.end();
            return;
          }
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (d: Buffer) => {
      framer.push(d);
      void pump();
    });
    arm();
    void session.greeting();
  }
}
