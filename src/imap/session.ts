/**
 * One IMAP4rev1 session of the read-only front (`mailcas imap`): states,
 * commands and responses. It speaks to the Store only (mailboxes, message
 * lists, MessageAccess); the server around it does the sockets.
 */
import { isMailcasError } from '../errors.js';
import type { Store } from '../store.js';
import type { Logger } from '../util/logger.js';
import type { MessageAccess } from '../types.js';
import { argSource, argText, parseSequenceSet, type Arg, type Command } from './command-parser.js';
import { answerItem, parseFetchItems, type FetchItem } from '../fetch/fetch-items.js';
import { parseFields, type RawField } from '../fetch/header.js';
import type { PasswordFile } from './passwd.js';
import { parseSearch, SearchError, type SearchFacts } from './search.js';
import { toWire, type ImapValue } from '../fetch/wire.js';
import { IMAP_LIST_PATTERN_MAX, IMAP_MAX_SEQUENCE_RANGES } from '../limits.js';
import { matchMailbox } from './mailbox-pattern.js';
import type { SessionReadAhead } from './read-ahead.js';

export interface SessionIo {
  /** Queues bytes; resolves when more may be queued (what is queued goes out in large writes). */
  write(b: Buffer | string): Promise<void>;
  /** Sends what is queued (the end of a response). */
  flush(): Promise<void>;
}

/**
 * Answers to RFC822.SIZE, INTERNALDATE, ENVELOPE, BODY, BODYSTRUCTURE and header sections (HEADER,
 * HEADER.FIELDS, n.MIME; up to 16 KiB) by message id, shared by the
 * sessions of one server: a message never changes once stored, so an answer
 * stays right for as long as it is kept (as Dovecot keeps them in its cache
 * file). Bounded by entries, oldest dropped first.
 */
export class AnswerCache {
  /** Answers in IMAP's wire form (latin1), ready to send. */
  private readonly map = new Map<string, string>();
  private chars = 0;
  /** Opened messages (layout and header blocks decoded), fewer: they are larger. */
  private readonly opened = new Map<string, MessageAccess>();
  constructor(
    private readonly max = 100_000,
    private readonly maxChars = 64 * 1024 * 1024,
    private readonly maxOpened = 512,
  ) {}
  access(store: Store, user: string, id: string): MessageAccess {
    const k = `${user} ${id}`;
    const hit = this.opened.get(k);
    if (hit) {
      this.opened.delete(k); // most recently used last
      this.opened.set(k, hit);
      return hit;
    }
    const m = store.access(id, { user });
    if (this.opened.size >= this.maxOpened) this.opened.delete(this.opened.keys().next().value!);
    this.opened.set(k, m);
    return m;
  }
  get(id: string, item: string): string | undefined {
    return this.map.get(`${id} ${item}`);
  }
  set(id: string, item: string, v: string): void {
    const k = `${id} ${item}`;
    const old = this.map.get(k);
    if (old !== undefined) {
      this.map.delete(k);
      this.chars -= old.length;
    }
    while (this.map.size && (this.map.size >= this.max || this.chars + v.length > this.maxChars)) {
      const [ok, ov] = this.map.entries().next().value!;
      this.map.delete(ok);
      this.chars -= ov.length;
    }
    this.map.set(k, v);
    this.chars += v.length;
  }
}

export interface SessionOptions {
  passwd: PasswordFile;
  log: Logger;
  /** Messages read ahead while earlier ones of a FETCH go out. */
  fetchWindow?: number;
  cache?: AnswerCache;
  /** This session's share of the bytes FETCH may read ahead of the socket (unbounded without one). */
  ahead?: SessionReadAhead;
  /** A failed login is answered this long after it arrived (default: at once). */
  authFailureDelayMs?: number;
}

export const CAPABILITIES = 'IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN ID NAMESPACE BINARY UNSELECT ENABLE';
const DELIMITER = '/';
/** Message bytes up to this are read ahead in full; larger ones stream when their turn comes. */
const BUFFER_AHEAD_MAX = 1024 * 1024;
const DEFAULT_FETCH_WINDOW = 16;

class No extends Error {
  constructor(
    readonly kind: 'NO' | 'BAD',
    message: string,
  ) {
    super(message);
  }
}

interface Selected {
  name: string;
  uids: number[];
}

type Prepared = {
  seq: number;
  uid: number;
  /** `reserved`: read-ahead bytes the part holds of the session's share, given back once written (or dropped). */
  parts: ({ name: string; wire: string } | { name: string; size: number; literal8: boolean; buffered: Buffer | null; reserved: number; stream: () => AsyncIterable<Buffer> })[];
} | null;

export class ImapSession {
  state: 'not-authenticated' | 'authenticated' | 'selected' | 'logout' = 'not-authenticated';
  user: string | null = null;
  private selected: Selected | null = null;
  /** An AUTHENTICATE waiting for the client's response line. */
  private saslTag: string | null = null;
  badCommands = 0;
  loginFailures = 0;

  constructor(
    private readonly store: Store,
    private readonly io: SessionIo,
    private readonly opts: SessionOptions,
  ) {}

  /** The connection is gone: what the session held goes back, and a command still running stops at its next message. */
  ended(): void {
    this.gone = true;
    this.opts.ahead?.giveAll();
  }

  private gone = false;

  async greeting(): Promise<void> {
    await this.io.write(`* OK [CAPABILITY ${CAPABILITIES}] mailcas IMAP (read-only) ready\r\n`);
    await this.io.flush();
  }

  get awaitingSasl(): boolean {
    return this.saslTag !== null;
  }

  /** The client's line after "+ " in AUTHENTICATE. */
  async saslResponse(line: string): Promise<void> {
    const tag = this.saslTag!;
    this.saslTag = null;
    const l = line.replace(/\r?\n$/, '');
    if (l === '*') await this.io.write(`${tag} BAD AUTHENTICATE cancelled\r\n`);
    else await this.plainLogin(tag, l);
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
      } else if (isMailcasError(e, 'E_REFUSED') && typeof e.data.imap === 'string') {
        await this.io.write(`${tag} NO [${e.data.imap}] ${e.message}\r\n`);
      } else if (isMailcasError(e, 'E_NOT_FOUND')) {
        await this.io.write(`${tag} NO [NONEXISTENT] ${e.message}\r\n`);
      } else {
        this.opts.log.warn('imap-command-failed', { user: this.user, command: cmd.name, error: (e as Error).message });
        await this.io.write(`${tag} NO [SERVERBUG] ${(e as Error).message}\r\n`);
      }
    }
  }

  private async run(cmd: Command): Promise<string> {
    const { name, args, tag } = cmd;
    switch (name) {
      case 'CAPABILITY':
        await this.io.write(`* CAPABILITY ${CAPABILITIES}\r\n`);
        return 'CAPABILITY completed';
      case 'NOOP':
        if (this.selected) await this.refresh();
        return 'NOOP completed';
      case 'LOGOUT':
        await this.io.write('* BYE mailcas IMAP logging out\r\n');
        this.state = 'logout';
        return 'LOGOUT completed';
      case 'ID':
        await this.io.write('* ID ("name" "mailcas")\r\n');
        return 'ID completed';
      case 'ENABLE':
        this.needAuth();
        await this.io.write('* ENABLED\r\n');
        return 'ENABLE completed';
      case 'STARTTLS':
        throw new No('BAD', 'STARTTLS is not offered: run the front on loopback or behind a TLS proxy');
      case 'LOGIN': {
        if (this.state !== 'not-authenticated') throw new No('BAD', 'already authenticated');
        const user = argText(args[0]);
        const pass = argText(args[1]);
        if (user === null || pass === null) throw new No('BAD', 'LOGIN needs a user and a password');
        await this.login(user, pass);
        return `[CAPABILITY ${CAPABILITIES}] LOGIN completed`;
      }
      case 'AUTHENTICATE': {
        if (this.state !== 'not-authenticated') throw new No('BAD', 'already authenticated');
        if ((argText(args[0]) ?? '').toUpperCase() !== 'PLAIN') throw new No('NO', '[CANNOT] only AUTHENTICATE PLAIN is offered');
        const initial = argText(args[1]);
        if (initial === null) {
          this.saslTag = tag;
          await this.io.write('+ \r\n');
          await this.io.flush();
          throw new Pending();
        }
        await this.plainLogin(tag, initial);
        throw new Pending();
      }
    }
    this.needAuth();
    switch (name) {
      case 'LIST':
      case 'LSUB':
        await this.list(name, argText(args[0]) ?? '', argText(args[1]) ?? '');
        return `${name} completed`;
      case 'NAMESPACE':
        await this.io.write(`* NAMESPACE (("" "${DELIMITER}")) NIL NIL\r\n`);
        return 'NAMESPACE completed';
      case 'STATUS':
        await this.status(argText(args[0]), args[1]);
        return 'STATUS completed';
      case 'SELECT':
      case 'EXAMINE':
        await this.select(argText(args[0]));
        return `[READ-ONLY] ${name} completed`;
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        return `${name} completed (every mailbox is listed)`;
      case 'CREATE':
      case 'DELETE':
      case 'RENAME':
      case 'APPEND':
        throw new No('NO', `[CANNOT] ${name}: this IMAP front is read-only (mail arrives through mailcas deliver or lmtp)`);
    }
    if (this.state !== 'selected' || !this.selected) throw new No('BAD', `${name} needs a selected mailbox`);
    switch (name) {
      case 'CHECK':
        return 'CHECK completed';
      case 'CLOSE':
      case 'UNSELECT':
        this.selected = null;
        this.state = 'authenticated';
        return `${name} completed`;
      case 'FETCH':
      case 'UID FETCH':
        await this.fetch(args, name === 'UID FETCH');
        return `${name} completed`;
      case 'SEARCH':
      case 'UID SEARCH':
        await this.search(args, name === 'UID SEARCH');
        return `${name} completed`;
      case 'STORE':
      case 'UID STORE':
      case 'EXPUNGE':
      case 'UID EXPUNGE':
      case 'COPY':
      case 'UID COPY':
      case 'MOVE':
      case 'UID MOVE':
        throw new No('NO', `[READ-ONLY] ${name}: the mailbox is read-only`);
    }
    throw new No('BAD', `unknown command ${name}`);
  }

  private needAuth(): void {
    if (this.state === 'not-authenticated') throw new No('BAD', 'log in first (LOGIN or AUTHENTICATE PLAIN)');
  }

  private async login(user: string, pass: string): Promise<void> {
    const t0 = Date.now();
    if (!(await this.opts.passwd.verifyAsync(user, pass))) {
      this.loginFailures++;
      this.opts.log.info('imap-login-failed', { user });
      // answered a fixed time after the attempt arrived, whatever it cost: no guessing at wire speed, and
      // the same time for a user who exists and one who does not
      const wait = t0 + (this.opts.authFailureDelayMs ?? 0) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      throw new No('NO', '[AUTHENTICATIONFAILED] invalid credentials');
    }
    this.user = user;
    this.state = 'authenticated';
    this.opts.log.info('imap-login', { user });
  }

  private async plainLogin(tag: string, b64: string): Promise<void> {
    const raw = Buffer.from(b64, 'base64').toString('utf8').split('\0');
    if (raw.length !== 3) return this.io.write(`${tag} BAD malformed PLAIN response\r\n`);
    const [authz, user, pass] = raw;
    if (authz && authz !== user) return this.io.write(`${tag} NO [AUTHORIZATIONFAILED] acting as another user is not allowed\r\n`);
    try {
      await this.login(user, pass);
    } catch (e) {
      return this.io.write(`${tag} NO ${(e as Error).message}\r\n`);
    }
    return this.io.write(`${tag} OK [CAPABILITY ${CAPABILITIES}] AUTHENTICATE completed\r\n`);
  }

  /** The user's mailboxes: those the store holds, INBOX always. */
  private mailboxNames(): string[] {
    const names = this.store.mailboxes(this.user!).map((m) => m.name);
    if (!names.some((n) => n.toUpperCase() === 'INBOX')) names.unshift('INBOX');
    return names;
  }

  private resolveName(name: string | null): string {
    if (name === null) throw new No('BAD', 'a mailbox name is needed');
    if (name.toUpperCase() === 'INBOX') return this.mailboxNames().find((n) => n.toUpperCase() === 'INBOX')!;
    const found = this.mailboxNames().find((n) => n === name);
    if (!found) throw new No('NO', `[NONEXISTENT] no mailbox ${name}`);
    return found;
  }

  private async list(cmd: string, ref: string, pattern: string): Promise<void> {
    if (pattern === '') {
      await this.io.write(`* ${cmd} (\\Noselect) "${DELIMITER}" ""\r\n`);
      return;
    }
    const full = ref + pattern;
    if (full.length > IMAP_LIST_PATTERN_MAX) throw new No('BAD', `mailbox pattern longer than ${IMAP_LIST_PATTERN_MAX} characters`);
    // (INBOX is matched case-insensitively: "inbox" names it)
    const inbox = /^inbox$/i.test(full);
    for (const n of this.mailboxNames()) if (matchMailbox(full, n, DELIMITER) || (n === 'INBOX' && inbox)) await this.io.write(`* ${cmd} () "${DELIMITER}" ${mailboxWire(n)}\r\n`);
  }

  private async status(nameArg: string | null, items: Arg | undefined): Promise<void> {
    const name = this.resolveName(nameArg);
    if (!Array.isArray(items) || !items.length) throw new No('BAD', 'STATUS needs a list of items');
    // counted in the database (a client polls STATUS of every folder: no listing of the mailbox)
    const count = this.store.mailboxes(this.user!).find((m) => m.name === name)?.messages ?? 0;
    const out: string[] = [];
    for (const it of items) {
      const k = (argText(it) ?? '').toUpperCase();
      if (k === 'MESSAGES') out.push(`MESSAGES ${count}`);
      else if (k === 'RECENT') out.push('RECENT 0');
      else if (k === 'UIDNEXT') out.push(`UIDNEXT ${this.store.nextId()}`);
      else if (k === 'UIDVALIDITY') out.push(`UIDVALIDITY ${this.store.uidValidity}`);
      else if (k === 'UNSEEN') out.push(`UNSEEN ${count}`);
      else throw new No('BAD', `unknown STATUS item ${k}`);
    }
    await this.io.write(`* STATUS ${mailboxWire(name)} (${out.join(' ')})\r\n`);
  }

  private async select(nameArg: string | null): Promise<void> {
    this.selected = null;
    this.state = 'authenticated';
    const name = this.resolveName(nameArg);
    const uids = this.store.list(this.user!, name).map((r) => Number(r.id));
    this.selected = { name, uids };
    this.state = 'selected';
    await this.io.write(
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n' +
        '* OK [PERMANENTFLAGS ()] read-only: no flags are kept\r\n' +
        `* ${uids.length} EXISTS\r\n* 0 RECENT\r\n` +
        `* OK [UIDVALIDITY ${this.store.uidValidity}] UIDs valid\r\n` +
        `* OK [UIDNEXT ${this.store.nextId()}] predicted next UID\r\n`,
    );
  }

  /** New messages since SELECT are announced (ids only grow; expunges by others are not shown until the next SELECT). */
  private async refresh(): Promise<void> {
    const sel = this.selected!;
    // only what came after the last UID known (a NOOP costs what is new, not the mailbox)
    const before = sel.uids.length;
    for (;;) {
      const page = this.store.listPage(this.user!, { mailbox: sel.name, after: sel.uids[sel.uids.length - 1] ?? 0, limit: REFRESH_PAGE });
      for (const r of page) sel.uids.push(Number(r.id));
      if (page.length < REFRESH_PAGE) break;
    }
    if (sel.uids.length > before) await this.io.write(`* ${sel.uids.length} EXISTS\r\n`);
  }

  /** Sequence numbers (1-based) a set names, each once, in mailbox order. */
  private targets(setText: string | null, uid: boolean): { seq: number; uid: number }[] {
    const sel = this.selected!;
    if (setText === null) throw new No('BAD', 'a sequence set is needed');
    const maxUid = sel.uids[sel.uids.length - 1] ?? 0;
    const ranges = parseSequenceSet(setText, uid ? maxUid : sel.uids.length);
    if (ranges === 'too-many') throw new No('BAD', `sequence set of more than ${IMAP_MAX_SEQUENCE_RANGES} ranges`);
    if (!ranges) throw new No('BAD', `bad sequence set ${setText.length > 64 ? `${setText.slice(0, 64)}...` : setText}`);
    // merged ranges (ascending, disjoint), looked up in the ascending UID list by binary search: a command
    // costs what it names, at most the mailbox, never the ranges times their lengths
    const out: { seq: number; uid: number }[] = [];
    for (const [a, b] of ranges) {
      if (uid) {
        for (let i = lowerBound(sel.uids, a); i < sel.uids.length && sel.uids[i] <= b; i++) out.push({ seq: i + 1, uid: sel.uids[i] });
      } else {
        if (b > sel.uids.length) throw new No('BAD', `no message ${b} (the mailbox has ${sel.uids.length})`);
        for (let s = a; s <= b; s++) out.push({ seq: s, uid: sel.uids[s - 1] });
      }
    }
    return out;
  }

  private async fetch(args: Arg[], uid: boolean): Promise<void> {
    if (args.length < 2) throw new No('BAD', 'FETCH needs a sequence set and items');
    const items: FetchItem[] = parseFetchItems(args.slice(1).map(argSource).join(' '));
    if (uid && !items.some((i) => i.kind === 'meta' && i.name === 'UID')) items.unshift({ kind: 'meta', name: 'UID' });
    const targets = this.targets(argText(args[0]), uid);
    const window = this.opts.fetchWindow ?? DEFAULT_FETCH_WINDOW;
    // messages are read `window` ahead of the one going out: on a remote store, latency overlaps;
    // one whose every item is in the answer cache is written from it at once (no read, no promise)
    const pending: (Promise<Prepared> | undefined)[] = [];
    const cached: (string | null | undefined)[] = [];
    const start = (k: number): void => {
      if (this.gone || k >= targets.length || pending[k] || cached[k] !== undefined) return;
      const line = this.cachedLine(targets[k], items);
      cached[k] = line;
      if (line !== null) return;
      const p = this.prepare(targets[k], items);
      // a read that fails before its turn must not be an unhandled rejection: its turn awaits it and answers NO
      p.catch(() => undefined);
      pending[k] = p;
    };
    for (let k = 0; k < Math.min(window, targets.length); k++) start(k);
    try {
      for (let k = 0; k < targets.length; k++) {
        // a client that went away stops costing anything: no more reads for it
        if (this.gone) throw new Fatal('the connection closed during FETCH');
        start(k + window);
        const line = cached[k];
        if (line) {
          cached[k] = ''; // written: not kept
          await this.io.write(line);
          continue;
        }
        const p = await pending[k];
        pending[k] = Promise.resolve(null); // release what it held
        if (p) {
          try {
            await this.writeFetch(p);
          } catch (e) {
            throw new Fatal((e as Error).message);
          }
        }
      }
    } finally {
      // what was read ahead and not sent (the command failed, the client went away) goes back to the budget
      for (const p of pending) void p?.then((x) => x?.parts.forEach((q) => 'reserved' in q && q.reserved && this.opts.ahead?.give(q.reserved)), () => undefined);
      pending.length = 0;
    }
  }

  /** The whole response line for a message whose every item is in the answer cache, else null. */
  private cachedLine(t: { seq: number; uid: number }, items: FetchItem[]): string | null {
    const cache = this.opts.cache;
    if (!cache) return null;
    const id = String(t.uid);
    let line = `* ${t.seq} FETCH (`;
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      let wire: string | undefined;
      if (it.kind === 'meta' && it.name === 'UID') wire = id;
      else if (it.kind === 'meta' && it.name === 'FLAGS') wire = '()';
      else if (cacheable(it)) wire = cache.get(id, cacheKey(it));
      if (wire === undefined) return null;
      line += `${i ? ' ' : ''}${it.name} ${wire}`;
    }
    return `${line})\r\n`;
  }

  private async prepare(t: { seq: number; uid: number }, items: FetchItem[]): Promise<Prepared> {
    const id = String(t.uid);
    let access: MessageAccess | null = null;
    /** The message, opened the first time an item needs it (answers kept in the cache need nothing). */
    const open = (): MessageAccess => (access ??= this.opts.cache ? this.opts.cache.access(this.store, this.user!, id) : this.store.access(id, { user: this.user! }));
    const parts: NonNullable<Prepared>['parts'] = [];
    for (const it of items) {
      if (it.kind === 'meta' && it.name === 'UID') parts.push({ name: 'UID', wire: String(t.uid) });
      else if (it.kind === 'meta' && it.name === 'FLAGS') parts.push({ name: 'FLAGS', wire: '()' });
      else {
        const isCacheable = cacheable(it);
        const key = cacheKey(it);
        const cached = isCacheable ? this.opts.cache?.get(id, key) : undefined;
        if (cached !== undefined) {
          parts.push({ name: it.name, wire: cached });
          continue;
        }
        let m: MessageAccess;
        try {
          m = open();
        } catch (e) {
          if (isMailcasError(e, 'E_NOT_FOUND')) return null; // expunged by another process since SELECT: left out
          throw e;
        }
        const a = await answerItem(m, it);
        if ('value' in a) {
          const wire = toWire(a.value).toString('latin1');
          if (it.kind === 'meta') this.opts.cache?.set(id, key, wire);
          parts.push({ name: a.name, wire });
        }
        else {
          const literal8 = it.kind === 'section' && it.binary;
          let buffered: Buffer | null = null;
          // read ahead only what fits this session's share and the server's (the rest streams in its turn)
          let reserved = 0;
          if (a.size <= BUFFER_AHEAD_MAX && (!this.opts.ahead || this.opts.ahead.tryTake(a.size))) {
            reserved = this.opts.ahead ? a.size : 0;
            try {
              const chunks: Buffer[] = [];
              for await (const c of a.bytes()) chunks.push(c);
              buffered = Buffer.concat(chunks);
            } catch (e) {
              this.opts.ahead?.give(reserved);
              throw e;
            }
          }
          if (isCacheable && buffered && a.size <= 16 * 1024) {
            // a header section: kept in wire form like the structure items
            this.opts.ahead?.give(reserved);
            const wire = `{${a.size}}\r\n${buffered.toString('latin1')}`;
            this.opts.cache?.set(id, key, wire);
            parts.push({ name: a.name, wire });
            continue;
          }
          parts.push({ name: a.name, size: a.size, literal8, buffered, reserved, stream: a.bytes });
        }
      }
    }
    return { seq: t.seq, uid: t.uid, parts };
  }

  private async writeFetch(p: NonNullable<Prepared>): Promise<void> {
    let head = `* ${p.seq} FETCH (`;
    for (let i = 0; i < p.parts.length; i++) {
      const x = p.parts[i];
      const sep = i ? ' ' : '';
      if ('wire' in x) {
        head += `${sep}${x.name} ${x.wire}`;
        continue;
      }
      await this.io.write(Buffer.from(`${head}${sep}${x.name} ${x.literal8 ? '~' : ''}{${x.size}}\r\n`, 'latin1'));
      head = '';
      if (x.buffered) {
        const b = x.buffered;
        x.buffered = null;
        await this.io.write(b);
        this.opts.ahead?.give(x.reserved);
        x.reserved = 0;
      } else {
        let n = 0;
        for await (const c of x.stream()) {
          n += c.length;
          await this.io.write(c);
        }
        if (n !== x.size) throw new Error(`message ${p.uid}: ${x.name} gave ${n} bytes, ${x.size} announced`);
      }
    }
    await this.io.write(Buffer.from(`${head})\r\n`, 'latin1'));
  }

  private async search(args: Arg[], uid: boolean): Promise<void> {
    const sel = this.selected!;
    const crit = parseSearch(args, { seq: sel.uids.length, uid: sel.uids[sel.uids.length - 1] ?? 0 });
    const hits: number[] = [];
    for (let i = 0; i < sel.uids.length; i++) {
      if (this.gone) throw new Fatal('the connection closed during SEARCH');
      const id = String(sel.uids[i]);
      let rec: ReturnType<Store['get']>;
      try {
        rec = this.store.get(id, { user: this.user! });
      } catch (e) {
        if (isMailcasError(e, 'E_NOT_FOUND')) continue;
        throw e;
      }
      let fields: RawField[] | null = null;
      const facts: SearchFacts = {
        seq: i + 1,
        uid: sel.uids[i],
        size: rec.size,
        received: rec.received,
        fields: async () => {
          if (fields) return fields;
          const m = this.store.access(id, { user: this.user! });
          const tree = await m.tree();
          return (fields = parseFields(await m.buffer(tree.headerStart, tree.bodyStart)));
        },
      };
      if (await crit(facts)) hits.push(uid ? sel.uids[i] : i + 1);
    }
    await this.io.write(`* SEARCH${hits.map((h) => ` ${h}`).join('')}\r\n`);
  }
}

/** Items whose answers the cache keeps: structure and metadata items, header sections. */
function cacheable(it: FetchItem): boolean {
  return it.kind === 'meta' || (it.kind === 'section' && !it.binary && /^(HEADER|MIME)/.test(it.section.text));
}

/** An item's key in the answer cache: the response name of a partial holds its origin only, the key its length too. */
function cacheKey(it: FetchItem): string {
  return it.kind === 'section' && it.partial ? `${it.name}.${it.partial.length}` : it.name;
}

/** Thrown by a command that has answered (or will answer) its tag itself. */
export class Pending extends Error {}

/** A failure part way through a response (a literal announced and not sent whole): the session cannot go on. */
export class Fatal extends Error {}

function mailboxWire(name: string): string {
  return toWire(name).toString('latin1');
}

/** New messages are looked up this many at a time when a command announces them (refresh). */
const REFRESH_PAGE = 10_000;

/** The first index of the ascending list xs whose value is at least v (xs.length when none). */
function lowerBound(xs: number[], v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
