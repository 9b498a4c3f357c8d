import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../util/logger.js';
import { CommandFramer, parseCommand, type Command, type CommandError } from './command-parser.js';
import type { ImapSession } from './session.js';
import type { SessionIo } from './session-state.js';
import { IMAP_BAD_COMMANDS_MAX, IMAP_COMMAND_MAX_BYTES, IMAP_INPUT_BUFFER_BYTES, IMAP_LOGIN_FAILURES_MAX } from '../limits.js';

export interface ConnectionLimits {
  loginMs: number;
  idleMs: number;
}

/**
 * One client's socket of the IMAP front: its output gathered into large
 * writes, its input framed into commands run one at a time, with the
 * limits that keep one client from holding the server (time to log in,
 * idle time, a client that stops reading, bad commands, failed logins,
 * input held unparsed).
 */
export class ImapConnection {
  /** Output gathered into writes of up to 64 KiB: one segment per small response, not one per piece. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private readonly framer = new CommandFramer();
  private busy = false;
  private over = false;
  private reading = true;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly loginBy: number;
  readonly io: SessionIo = {
    write: (b) => this.write(b),
    flush: () => this.send(),
  };
  private readonly onData = (d: Buffer): void => {
    if (this.over) return;
    this.framer.push(d);
    this.flowControl();
    void this.pump();
  };
  private session!: ImapSession;

  constructor(
    private socket: net.Socket,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
    /** Ends the connection with a last line and frees its slot (the server's). */
    private readonly hangUp: (socket: net.Socket, last: string | Buffer) => void,
  ) {
    // the time to log in counts from the connection, whatever is sent meanwhile
    this.loginBy = Date.now() + limits.loginMs;
  }

  /** Starts serving the session over the socket. */
  start(session: ImapSession): void {
    this.session = session;
    this.socket.setNoDelay(true);
    this.socket.on('close', () => {
      this.over = true;
      this.framer.clear();
      if (this.timer) clearTimeout(this.timer);
      session.ended();
    });
    this.socket.on('data', this.onData);
    this.arm();
    void session.greeting();
  }

  /**
   * STARTTLS (RFC 3501 6.2.1): no more plaintext is read (anything the client
   * sent after the command is dropped, never run), the tagged OK goes out, and
   * the socket is wrapped: from the handshake on, every byte is TLS.
   */
  startTls(ctx: tls.SecureContext, line: string): Promise<void> {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    raw.pause();
    this.framer.clear();
    raw.write(line);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
    this.socket = secure;
    this.reading = true;
    secure.on('error', () => raw.destroy());
    secure.on('data', this.onData);
    return new Promise((resolve) => {
      secure.once('secure', () => resolve());
      secure.once('close', () => resolve());
    });
  }

  /** The socket as it is now (TLS after STARTTLS). */
  get current(): net.Socket {
    return this.socket;
  }

  private send(): Promise<void> {
    return new Promise((resolve) => {
      const b = this.queued.length === 1 ? this.queued[0] : Buffer.concat(this.queued, this.queuedBytes);
      this.queued = [];
      this.queuedBytes = 0;
      if (this.socket.destroyed || !b.length) return resolve();
      const done = (): void => {
        // a command whose output moves is not idle (a long FETCH to a client that reads slowly)
        if (this.running && this.session.state !== 'not-authenticated') this.arm();
        resolve();
      };
      if (this.socket.write(b)) done();
      else this.socket.once('drain', done).once('close', resolve);
    });
  }

  private async write(b: Buffer | string): Promise<void> {
    const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
    if (buf.length >= 16 * 1024) {
      // a large piece goes out as it is, after what is queued: no copy
      if (this.queuedBytes) await this.send();
      this.queued.push(buf);
      this.queuedBytes = buf.length;
      return this.send();
    }
    this.queued.push(buf);
    this.queuedBytes += buf.length;
    return this.queuedBytes >= 64 * 1024 ? this.send() : undefined;
  }

  /** The last line, after what is queued; never waits for a client that does not read (it is cut off a second later). */
  private bye(line: string): void {
    this.over = true;
    this.framer.clear(); // what the client sent after this is never read
    const last = Buffer.concat([...this.queued, Buffer.from(line, 'latin1')]);
    this.queued = [];
    this.queuedBytes = 0;
    this.hangUp(this.socket, last);
  }

  /**
   * Before login: the deadline from the connection. After: idle time from the
   * end of the last command, or, while one runs, from the last time its output moved.
   */
  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    const login = this.session.state === 'not-authenticated';
    const ms = login ? Math.max(0, this.loginBy - Date.now()) : this.limits.idleMs;
    const why = login ? 'no login in time' : this.running ? 'not reading for too long' : 'idle for too long';
    this.timer = setTimeout(() => this.bye(`* BYE ${why}\r\n`), ms);
    this.timer.unref();
  }

  /** Input is read while the framer holds little; a flood waits in the kernel, not here. */
  private flowControl(): void {
    const want = !this.over && this.framer.buffered < IMAP_INPUT_BUFFER_BYTES;
    if (want && !this.reading) this.socket.resume();
    if (!want && this.reading) this.socket.pause();
    this.reading = want;
  }

  /** Commands run one at a time, in order; bytes that arrive meanwhile wait in the framer. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.over) {
        const ev = this.framer.next();
        if (!ev) break;
        if (ev.kind === 'error') return this.bye(`* BYE ${ev.message}\r\n`);
        if (ev.kind === 'continue') {
          await this.write('+ go ahead\r\n');
          await this.send();
          continue;
        }
        if (ev.kind === 'append') {
          // an APPEND's message: refused at once (before a synchronizing literal is sent), or spooled as it comes
          const refused = this.session.beginAppend(ev.tag, ev.size);
          if (refused && ev.sync) {
            this.session.dropAppend();
            this.framer.abortCommand();
            if (refused.startsWith('BAD')) this.session.badCommands++;
            await this.write(`${ev.tag} ${refused}\r\n`);
            await this.send();
          } else if (refused && ev.size > IMAP_COMMAND_MAX_BYTES) {
            // a non-synchronizing literal the server will not take, and too large to read and drop: the
            // client is told why and the connection ends (RFC 7888 4: LITERAL+ is the client's risk)
            return this.bye(`* BYE ${refused.replace(/^(NO|BAD) /, '')}: a literal this large must be synchronizing\r\n`);
          } else if (ev.sync) {
            await this.write('+ ready for the message\r\n');
            await this.send();
          }
          this.arm();
          continue;
        }
        if (ev.kind === 'append-data') {
          await this.session.appendData(ev.bytes);
          this.flowControl();
          continue;
        }
        if (!(await this.run(ev.bytes))) return;
        // other sessions get their turn between two commands of this one, even when every write completes at once
        await new Promise((r) => setImmediate(r));
        this.flowControl();
      }
    } finally {
      this.busy = false;
      this.flowControl();
    }
  }

  /** One command (or an AUTHENTICATE's response line); false when the connection is over. */
  private async run(bytes: Buffer): Promise<boolean> {
    const session = this.session;
    this.running = true;
    this.arm();
    let cmd: Command | undefined;
    if (session.awaitingSasl) await session.saslResponse(bytes.toString('latin1'));
    else if (session.idling) await session.idleLine(bytes.toString('latin1'));
    else
      try {
        cmd = parseCommand(bytes);
      } catch (e) {
        const ce = e as CommandError;
        session.badCommands++; // unparseable lines count like any other BAD
        await this.write(`${ce.tag ?? '*'} BAD ${ce.message}\r\n`);
        await this.send();
      }
    if (cmd) {
      try {
        await session.handle(cmd);
      } catch (e) {
        // a failure while a literal was going out: the client cannot resync, close the connection
        this.log.warn('imap-session-aborted', { user: session.user, error: (e as Error).message });
        this.socket.destroy();
        return false;
      }
    }
    this.running = false;
    this.arm();
    if (session.state === 'logout') {
      this.hangUp(this.socket, '');
      return false;
    }
    if (session.badCommands > IMAP_BAD_COMMANDS_MAX) {
      this.bye(`* BYE too many bad commands (the limit is ${IMAP_BAD_COMMANDS_MAX})\r\n`);
      return false;
    }
    if (session.loginFailures >= IMAP_LOGIN_FAILURES_MAX) {
      this.bye(`* BYE too many failed logins (the limit is ${IMAP_LOGIN_FAILURES_MAX})\r\n`);
      return false;
    }
    return true;
  }
}
