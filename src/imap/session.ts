/**
 * One IMAP4rev1 session of the front (`mailcas imap`): states, commands and
 * responses. It speaks to the Store only (mailbox state, message lists,
 * MessageAccess, ingest for APPEND); the server around it does the sockets.
 */
import { isMailcasError } from '../errors.js';
import type { Store } from '../store.js';
import { argText, type Command } from './command-parser.js';
import { SearchError } from './search.js';
import { capabilities, DELIMITER, Fatal, No, Pending, type Selected, type SessionIo, type SessionOptions, type SessionState } from './session-state.js';
import { login, needPrivacy, plainLogin } from './handlers/auth.js';
import { create, list, refresh, remove, rename, select, status, subscribe } from './handlers/mailboxes.js';
import { fetch } from './handlers/fetch.js';
import { search } from './handlers/search.js';
import { copy, expunge, store } from './handlers/store.js';
import { append, appendRefusal, AppendSpool } from './handlers/append.js';
import { Idle } from './handlers/idle.js';

export { AnswerCache } from './answer-cache.js';
export { CAPABILITIES, capabilities, Fatal, Pending, type SessionIo, type SessionOptions } from './session-state.js';

export class ImapSession implements SessionState {
  state: 'not-authenticated' | 'authenticated' | 'selected' | 'logout' = 'not-authenticated';
  user: string | null = null;
  selected: Selected | null = null;
  /** An AUTHENTICATE waiting for the client's response line. */
  private saslTag: string | null = null;
  badCommands = 0;
  loginFailures = 0;
  condstore = false;
  qresync = false;
  /** An IDLE waiting for DONE. */
  private idle: Idle | null = null;
  /** The message of the APPEND being received. */
  private appending: AppendSpool | null = null;

  constructor(
    readonly store: Store,
    readonly io: SessionIo,
    readonly opts: SessionOptions,
  ) {}

  /** The connection is gone: what the session held goes back, and a command still running stops at its next message. */
  ended(): void {
    this.gone = true;
    this.opts.ahead?.giveAll();
    this.idle?.stop();
    this.appending?.dispose();
    this.appending = null;
  }

  gone = false;

  async greeting(): Promise<void> {
    await this.io.write(`* OK [CAPABILITY ${capabilities(this.opts.transport)}] mailcas IMAP ready\r\n`);
    await this.io.flush();
  }

  get awaitingSasl(): boolean {
    return this.saslTag !== null;
  }

  get idling(): boolean {
    return this.idle !== null;
  }

  /** The client's line while IDLE runs. */
  async idleLine(line: string): Promise<void> {
    const idle = this.idle!;
    this.idle = null;
    await idle.end(line);
  }

  /**
   * An APPEND announced its message literal: null to take it (a synchronizing
   * literal is then asked for), or the tagged answer refusing it (sent before
   * the client sends a synchronizing literal; a non-synchronizing one is read and dropped).
   */
  beginAppend(tag: string, size: number): string | null {
    this.appending?.dispose();
    const refused = appendRefusal(this, size);
    this.appending = new AppendSpool(tag, size, refused, this.store.tmpDir);
    return refused;
  }

  /** The APPEND's message bytes as they arrive. */
  async appendData(b: Buffer): Promise<void> {
    await this.appending?.write(b);
  }

  /** A refused synchronizing APPEND: nothing more comes for it. */
  dropAppend(): void {
    this.appending?.dispose();
    this.appending = null;
  }

  /** The client's line after "+ " in AUTHENTICATE. */
  async saslResponse(line: string): Promise<void> {
    const tag = this.saslTag!;
    this.saslTag = null;
    const l = line.replace(/\r?\n$/, '');
    if (l === '*') await this.io.write(`${tag} BAD AUTHENTICATE cancelled\r\n`);
    else await plainLogin(this, tag, l);
    await this.io.flush();
  }

  async handle(cmd: Command): Promise<void> {
    try {
      await this.answer(cmd);
    } finally {
      await this.io.flush();
    }
  }

  private async answer(cmd: Command): Promise<void> {
    const { tag } = cmd;
    try {
      const done = await this.run(cmd);
      await this.io.write(`${tag} OK ${done}\r\n`);
    } catch (e) {
      await this.answerError(tag, cmd, e);
    } finally {
      if (cmd.name === 'APPEND') this.dropAppend();
    }
  }

  private async answerError(tag: string, cmd: Command, e: unknown): Promise<void> {
    if (e instanceof Pending) return;
    if (e instanceof Fatal) throw e;
    if (e instanceof No) {
      if (e.kind === 'BAD') this.badCommands++;
      await this.io.write(`${tag} ${e.kind} ${e.message}\r\n`);
    } else if (e instanceof SearchError) {
      await this.io.write(`${tag} ${/^\[(CANNOT|BADCHARSET)/.test(e.message) ? 'NO' : 'BAD'} ${e.message}\r\n`);
    } else if (isMailcasError(e) && e.transient) {
      await this.io.write(`${tag} NO [UNAVAILABLE] ${e.message} (temporary: try again)\r\n`);
    } else if (isMailcasError(e, 'E_USAGE')) {
      this.badCommands++;
      await this.io.write(`${tag} BAD ${e.message}\r\n`);
    } else if (isMailcasError(e) && typeof e.data.imap === 'string') {
      await this.io.write(`${tag} NO [${e.data.imap}] ${e.message}\r\n`);
    } else if (isMailcasError(e, 'E_TOO_LARGE')) {
      await this.io.write(`${tag} NO [TOOBIG] ${e.message}\r\n`);
    } else if (isMailcasError(e, 'E_REFUSED')) {
      await this.io.write(`${tag} NO ${e.message}\r\n`);
    } else if (isMailcasError(e, 'E_NOT_FOUND')) {
      await this.io.write(`${tag} NO [NONEXISTENT] ${e.message}\r\n`);
    } else if (isMailcasError(e, 'E_CORRUPT') || isMailcasError(e, 'E_INTEGRITY')) {
      // RFC 5530: the message is damaged; nothing of it was sent
      this.opts.log.warn('imap-damaged-message', { user: this.user, command: cmd.name, error: e.message });
      await this.io.write(`${tag} NO [CORRUPTION] ${e.message}\r\n`);
    } else {
      this.opts.log.warn('imap-command-failed', { user: this.user, command: cmd.name, error: (e as Error).message });
      await this.io.write(`${tag} NO [SERVERBUG] ${(e as Error).message}\r\n`);
    }
  }

  private async run(cmd: Command): Promise<string> {
    const { name, args, tag } = cmd;
    switch (name) {
      case 'CAPABILITY':
        await this.io.write(`* CAPABILITY ${capabilities(this.opts.transport)}\r\n`);
        return 'CAPABILITY completed';
      case 'NOOP':
        if (this.selected) await refresh(this);
        return 'NOOP completed';
      case 'LOGOUT':
        await this.io.write('* BYE mailcas IMAP logging out\r\n');
        this.state = 'logout';
        return 'LOGOUT completed';
      case 'ID':
        await this.io.write('* ID ("name" "mailcas")\r\n');
        return 'ID completed';
      case 'ENABLE': {
        this.needAuth();
        const on: string[] = [];
        for (const a of args) {
          const x = (argText(a) ?? '').toUpperCase();
          if (x === 'CONDSTORE' || x === 'QRESYNC') {
            // CONDSTORE enabled on a selected mailbox: its HIGHESTMODSEQ now (RFC 7162 3.1.8)
            if (!this.condstore && this.selected) await this.io.write(`* OK [HIGHESTMODSEQ ${this.selected.modseq}] modseq of the last change\r\n`);
            this.condstore = true;
            if (x === 'QRESYNC') this.qresync = true;
            on.push(x);
          }
        }
        await this.io.write(`* ENABLED${on.map((x) => ` ${x}`).join('')}\r\n`);
        return 'ENABLE completed';
      }
      case 'STARTTLS': {
        const t = this.opts.transport;
        if (!t?.canStartTls || !this.io.startTls) throw new No('BAD', 'STARTTLS is not offered: start mailcas imap with --tls-cert and --tls-key');
        if (t.secure) throw new No('BAD', 'TLS is already in place');
        if (this.state !== 'not-authenticated') throw new No('BAD', 'STARTTLS comes before login');
        await this.io.flush();
        await this.io.startTls(`${tag} OK begin TLS negotiation now\r\n`);
        t.secure = true;
        throw new Pending();
      }
      case 'LOGIN': {
        if (this.state !== 'not-authenticated') throw new No('BAD', 'already authenticated');
        const user = argText(args[0]);
        const pass = argText(args[1]);
        if (user === null || pass === null) throw new No('BAD', 'LOGIN needs a user and a password');
        await login(this, user, pass);
        return `[CAPABILITY ${capabilities(this.opts.transport)}] LOGIN completed`;
      }
      case 'AUTHENTICATE': {
        if (this.state !== 'not-authenticated') throw new No('BAD', 'already authenticated');
        if ((argText(args[0]) ?? '').toUpperCase() !== 'PLAIN') throw new No('NO', '[CANNOT] only AUTHENTICATE PLAIN is offered');
        needPrivacy(this);
        const initial = argText(args[1]);
        if (initial === null) {
          this.saslTag = tag;
          await this.io.write('+ \r\n');
          await this.io.flush();
          throw new Pending();
        }
        await plainLogin(this, tag, initial);
        throw new Pending();
      }
    }
    this.needAuth();
    return this.runAuthenticated(cmd);
  }

  /** Commands of the authenticated state (and the selected one). */
  private async runAuthenticated(cmd: Command): Promise<string> {
    const { name, args, tag } = cmd;
    switch (name) {
      case 'LIST':
      case 'LSUB':
        await list(this, name, args);
        return `${name} completed`;
      case 'NAMESPACE':
        await this.io.write(`* NAMESPACE (("" "${DELIMITER}")) NIL NIL\r\n`);
        return 'NAMESPACE completed';
      case 'STATUS':
        await status(this, argText(args[0]), args[1]);
        return 'STATUS completed';
      case 'SELECT':
      case 'EXAMINE':
        return `${await select(this, argText(args[0]), name === 'EXAMINE', args[1])} ${name} completed`;
      case 'CREATE':
        await create(this, args);
        return 'CREATE completed';
      case 'DELETE':
        await remove(this, args);
        return 'DELETE completed';
      case 'RENAME':
        await rename(this, args);
        return 'RENAME completed';
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        await subscribe(this, args, name === 'SUBSCRIBE');
        return `${name} completed`;
      case 'APPEND':
        return `${await append(this, args, this.appending)} APPEND completed`;
      case 'IDLE':
        this.idle = new Idle(this, tag);
        await this.idle.start();
        throw new Pending();
    }
    if (this.state !== 'selected' || !this.selected) throw new No('BAD', `${name} needs a selected mailbox`);
    return this.runSelected(cmd);
  }

  /** Commands of the selected state. */
  private async runSelected(cmd: Command): Promise<string> {
    const { name, args } = cmd;
    switch (name) {
      case 'CHECK':
        await refresh(this);
        return 'CHECK completed';
      case 'CLOSE':
      case 'UNSELECT':
        if (name === 'CLOSE') await expunge(this, [], false, true);
        this.selected = null;
        this.state = 'authenticated';
        return `${name} completed`;
      case 'FETCH':
      case 'UID FETCH':
        await fetch(this, args, name === 'UID FETCH');
        await refresh(this, { expunges: name === 'UID FETCH' });
        return `${name} completed`;
      case 'SEARCH':
      case 'UID SEARCH':
        await search(this, args, name === 'UID SEARCH');
        return `${name} completed`;
      case 'STORE':
      case 'UID STORE':
        return `${await store(this, args, name === 'UID STORE')} ${name} completed`.trimStart();
      case 'EXPUNGE':
      case 'UID EXPUNGE':
        await expunge(this, args, name === 'UID EXPUNGE');
        return `${name} completed`;
      case 'COPY':
      case 'UID COPY':
      case 'MOVE':
      case 'UID MOVE':
        return `${await copy(this, args, name.startsWith('UID'), name.endsWith('MOVE'))} ${name} completed`.trimStart();
    }
    throw new No('BAD', `unknown command ${name}`);
  }

  private needAuth(): void {
    if (this.state === 'not-authenticated') throw new No('BAD', 'log in first (LOGIN or AUTHENTICATE PLAIN)');
  }

}
