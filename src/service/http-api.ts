/**
 * The HTTP API of `mailcas serve`: what an IMAP server or a webmail asks a
 * store for. Every route is under /v1 and needs `Authorization: Bearer TOKEN`.
 *
 *   GET /v1/users/{user}/mailboxes                      JSON: the user's mailboxes
 *   GET /v1/users/{user}/messages?mailbox=&after=&limit= JSON: a page of messages, id order
 *   GET /v1/users/{user}/messages/{id}                  the exact bytes (message/rfc822; Range: 206)
 *   GET /v1/users/{user}/messages/{id}/fetch?items=...  FETCH items as JSON (format=imap: IMAP's wire form)
 *   GET /v1/users/{user}/messages/{id}/section/{spec}   bytes of BODY[spec] (Range: 206)
 *   GET /v1/users/{user}/messages/{id}/binary/{part}    decoded bytes of BINARY[part] (Range: 206)
 *   GET /v1/stats                                       blob reads and bytes since start
 *
 * No token or an unknown one: 401. A token not granted the user, an unknown
 * id or another user's id: 404, the same answer, so ids cannot be probed.
 * Errors: `{"error": {"code", "message"}}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MailcasError, isMailcasError } from '../errors.js';
import { DEFAULT_MAX_JSON_BYTES } from '../limits.js';
import type { Store } from '../store.js';
import type { Logger } from '../util/logger.js';
import { answerItem, parseFetchItems, type FetchAnswer } from '../fetch/fetch-items.js';
import { toJson, toWire, type ImapValue } from '../fetch/wire.js';
import type { MessageAccess } from '../types.js';
import { parseRange } from './range-header.js';
import type { Tokens } from './tokens.js';

export interface ApiOptions {
  log: Logger;
  /** Section bytes a JSON fetch answer may carry (base64) in all; more: fetch the section itself. */
  maxJsonBytes?: number;
  /** Largest page of a listing. */
  maxPage?: number;
}

export { DEFAULT_MAX_JSON_BYTES };
export const DEFAULT_MAX_PAGE = 1000;

/** Bodies up to this size are gathered and sent in one write with their status line; larger ones stream. */
const BUFFERED_RESPONSE_MAX = 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const notFound = (): HttpError => new HttpError(404, 'not_found', 'no such message for this user');

/** The routes of the API over one store and its tokens. */
class HttpApi {
  /** Requests by outcome. */
  readonly stats: Record<string, number> = { requests: 0, errors: 0 };
  private readonly maxJson: number;
  private readonly maxPage: number;

  constructor(
    private readonly store: Store,
    private readonly tokens: Tokens,
    private readonly opts: ApiOptions,
  ) {
    this.maxJson = opts.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
    this.maxPage = opts.maxPage ?? DEFAULT_MAX_PAGE;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    const t0 = Date.now();
    this.route(req, res)
      .catch((e) => this.fail(res, e))
      .finally(() => {
        if (res.statusCode >= 500) this.opts.log.warn('http-request', { method: req.method, url: req.url, status: res.statusCode, ms: Date.now() - t0 });
        else this.opts.log.info('http-request', { method: req.method, url: req.url, status: res.statusCode, ms: Date.now() - t0 });
      });
  }

  fail(res: ServerResponse, e: unknown): void {
    this.stats.errors++;
    const h = toHttpError(e);
    if (h.status >= 500) this.opts.log.warn('http-error', { code: h.code, error: (e as Error)?.message });
    if (res.headersSent) {
      // the status line is gone: cut the connection so the client sees a short body, never a wrong one
      res.destroy(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    const body = JSON.stringify({ error: { code: h.code, message: h.message } });
    res.writeHead(h.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...h.headers });
    res.end(body);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://mailcas.invalid');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'v1') throw new HttpError(404, 'not_found', `no such endpoint ${url.pathname}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', 'the service is read-only: GET and HEAD only', { Allow: 'GET, HEAD' });
    const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token || this.tokens.grants(token) === null) {
      throw new HttpError(401, 'unauthorized', token ? 'unknown token' : 'an Authorization: Bearer token is required', { 'WWW-Authenticate': 'Bearer realm="mailcas"' });
    }
    if (parts[1] === 'stats' && parts.length === 2) return json(res, { blobReads: this.store.readStats().reads, blobBytes: this.store.readStats().bytes, ...this.stats });
    if (parts[1] !== 'users' || parts.length < 3) throw new HttpError(404, 'not_found', `no such endpoint ${url.pathname}`);
    let user: string;
    try {
      user = decodeURIComponent(parts[2]);
    } catch {
      throw new HttpError(400, 'bad_request', 'the user in the path is not valid percent-encoding');
    }
    // a token not granted this user learns nothing about it: the same 404 as an unknown message
    if (!this.tokens.grants(token, user)) throw notFound();
    if (parts[3] === 'mailboxes' && parts.length === 4) return json(res, { user, mailboxes: this.store.mailboxes(user) });
    if (parts[3] !== 'messages') throw new HttpError(404, 'not_found', `no such endpoint ${url.pathname}`);
    if (parts.length === 4) return this.list(res, user, url.searchParams);
    const id = parts[4];
    if (!/^[1-9]\d{0,15}$/.test(id)) throw notFound();
    let m: MessageAccess;
    try {
      m = this.store.access(id, { user });
    } catch (e) {
      if (isMailcasError(e, 'E_NOT_FOUND')) throw notFound();
      throw e;
    }
    if (parts.length === 5) return this.whole(req, res, m);
    let rest: string;
    try {
      rest = parts.slice(6).map((p) => decodeURIComponent(p)).join('/');
    } catch {
      throw new HttpError(400, 'bad_request', 'the section in the path is not valid percent-encoding');
    }
    if (parts[5] === 'fetch' && parts.length === 6) return this.fetchItems(res, m, url.searchParams);
    if (parts[5] === 'section' && parts.length <= 7) return this.section(req, res, m, `BODY.PEEK[${rest}]`);
    if (parts[5] === 'binary' && parts.length <= 7) return this.section(req, res, m, `BINARY.PEEK[${rest}]`);
    throw new HttpError(404, 'not_found', `no such endpoint ${url.pathname}`);
  }

  private list(res: ServerResponse, user: string, q: URLSearchParams): void {
    const limit = q.has('limit') ? Number(q.get('limit')) : 100;
    const after = q.has('after') ? Number(q.get('after')) : 0;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > this.maxPage) throw new HttpError(400, 'bad_request', `limit must be 1 to ${this.maxPage}`);
    if (!Number.isSafeInteger(after) || after < 0) throw new HttpError(400, 'bad_request', 'after must be a message id');
    const mailbox = q.get('mailbox') ?? undefined;
    const page = this.store.listPage(user, { mailbox, after, limit });
    const messages = page.map((r) => ({ id: r.id, mailbox: r.mailbox, size: r.size, received: new Date(r.received).toISOString(), subject: r.subject, from: r.from, date: r.date, messageId: r.messageId }));
    json(res, { user, mailbox: mailbox ?? null, messages, next: page.length === limit ? page[page.length - 1].id : null });
  }

  private async whole(req: IncomingMessage, res: ServerResponse, m: MessageAccess): Promise<void> {
    const r = parseRange(req.headers.range, m.size);
    const common = { 'Content-Type': 'message/rfc822', 'Accept-Ranges': 'bytes', 'Cache-Control': 'private, max-age=31536000, immutable', 'X-Mailcas-Size': String(m.size) };
    if (r.kind === 'unsatisfiable') throw new HttpError(416, 'range_not_satisfiable', `the message has ${m.size} bytes`, { 'Content-Range': `bytes */${m.size}` });
    if (r.kind === 'range') {
      return this.respond(req, res, 206, { ...common, 'Content-Range': `bytes ${r.start}-${r.end - 1}/${m.size}` }, r.end - r.start, () => m.bytes(r.start, r.end), () => m.buffer(r.start, r.end));
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...common, 'Content-Length': m.size });
      return void res.end();
    }
    if (m.size <= BUFFERED_RESPONSE_MAX) {
      // checked whole against its hash before the status line goes out: a damaged message is a 500, not a cut
      const b = await m.whole();
      res.writeHead(200, { ...common, 'Content-Length': b.length });
      return void res.end(b);
    }
    // a large message: checked against its hash as it goes out (a mismatch cuts the connection)
    res.writeHead(200, { ...common, 'Content-Length': m.size });
    await pipeline(Readable.from(m.wholeStream(), { objectMode: false }), res);
  }

  private async section(req: IncomingMessage, res: ServerResponse, m: MessageAccess, item: string): Promise<void> {
    const [it] = parseItemsOr400(item);
    const a = await this.answer(m, it);
    if (!('bytes' in a)) throw new HttpError(400, 'bad_request', `${item} is not a section`);
    const r = parseRange(req.headers.range, a.size);
    if (r.kind === 'unsatisfiable') throw new HttpError(416, 'range_not_satisfiable', `the section has ${a.size} bytes`, { 'Content-Range': `bytes */${a.size}` });
    const head = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', 'X-Imap-Item': a.name };
    if (r.kind === 'range') {
      // the range of the section: the item again with a partial
      const ranged = req.method === 'HEAD' ? null : await this.answer(m, parseItemsOr400(`${item}<${r.start}.${r.end - r.start}>`)[0]);
      return this.respond(req, res, 206, { ...head, 'Content-Range': `bytes ${r.start}-${r.end - 1}/${a.size}` }, r.end - r.start, () => (ranged as { bytes: () => AsyncIterable<Buffer> }).bytes());
    }
    return this.respond(req, res, 200, head, a.size, () => a.bytes(), a.buffer);
  }

  /**
   * A body of known size: up to BUFFERED_RESPONSE_MAX gathered first and
   * sent with the status line in one write (a read that fails is then a
   * clean error answer); larger ones streamed.
   */
  private async respond(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    size: number,
    bytes: () => AsyncIterable<Buffer>,
    buffer?: () => Promise<Buffer>,
  ): Promise<void> {
    if (req.method === 'HEAD') {
      res.writeHead(status, { ...headers, 'Content-Length': size });
      return void res.end();
    }
    if (size <= BUFFERED_RESPONSE_MAX && buffer) {
      const b = await buffer();
      if (b.length !== size) throw new MailcasError('E_INTERNAL', `the answer has ${b.length} bytes, ${size} announced`);
      res.writeHead(status, { ...headers, 'Content-Length': size });
      return void res.end(b);
    }
    if (size <= BUFFERED_RESPONSE_MAX) {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of bytes()) {
        chunks.push(c);
        n += c.length;
      }
      if (n !== size) throw new MailcasError('E_INTERNAL', `the answer has ${n} bytes, ${size} announced`);
      res.writeHead(status, { ...headers, 'Content-Length': size });
      return void res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n));
    }
    res.writeHead(status, { ...headers, 'Content-Length': size });
    return send(res, bytes());
  }

  private async fetchItems(res: ServerResponse, m: MessageAccess, q: URLSearchParams): Promise<void> {
    const items = parseItemsOr400(q.get('items') ?? 'FAST');
    const answers: FetchAnswer[] = [];
    for (const it of items) {
      if (it.kind === 'meta' && it.name === 'FLAGS') answers.push({ name: 'FLAGS', value: [] });
      else if (it.kind === 'meta' && it.name === 'UID') answers.push({ name: 'UID', value: Number(m.id) });
      else answers.push(await this.answer(m, it));
    }
    if ((q.get('format') ?? 'json') === 'imap') {
      // IMAP's wire form of the parenthesized list (literals for section bytes): what a FETCH response carries
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=x-imap' });
      return send(res, wireList(answers));
    }
    const out: Record<string, unknown> = {};
    let carried = 0;
    for (const a of answers) {
      if ('value' in a) out[a.name] = toJson(a.value);
      else {
        carried += a.size;
        if (carried > this.maxJson) throw new HttpError(413, 'too_large', `section bytes in one JSON answer are limited to ${this.maxJson}: fetch the section itself (/section/SPEC) or use format=imap`);
        const chunks: Buffer[] = [];
        for await (const c of a.bytes()) chunks.push(c);
        out[a.name] = { size: a.size, base64: Buffer.concat(chunks).toString('base64') };
      }
    }
    json(res, { id: m.id, items: out, blobReads: m.stats.reads, blobBytes: m.stats.bytes });
  }

  private async answer(m: MessageAccess, it: ReturnType<typeof parseFetchItems>[number]): Promise<FetchAnswer> {
    try {
      return await answerItem(m, it);
    } catch (e) {
      if (isMailcasError(e, 'E_NOT_FOUND')) throw new HttpError(404, 'no_such_section', (e as Error).message);
      throw e;
    }
  }
}

/** The request handler; `stats` counts requests by outcome. */
export function apiHandler(store: Store, tokens: Tokens, opts: ApiOptions): ((req: IncomingMessage, res: ServerResponse) => void) & { stats: Record<string, number> } {
  const api = new HttpApi(store, tokens, opts);
  return Object.assign((req: IncomingMessage, res: ServerResponse) => api.handle(req, res), { stats: api.stats });
}

function parseItemsOr400(text: string): ReturnType<typeof parseFetchItems> {
  try {
    return parseFetchItems(text);
  } catch (e) {
    throw new HttpError(400, 'bad_request', (e as Error).message);
  }
}

async function* wireList(answers: FetchAnswer[]): AsyncGenerator<Buffer> {
  yield Buffer.from('(');
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i];
    yield Buffer.from(`${i ? ' ' : ''}${a.name} `, 'latin1');
    if ('value' in a) yield toWire(a.value as ImapValue);
    else {
      yield Buffer.from(`{${a.size}}\r\n`);
      yield* a.bytes();
    }
  }
  yield Buffer.from(')');
}

function json(res: ServerResponse, body: unknown): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': b.length });
  res.end(b);
}

async function send(res: ServerResponse, bytes: AsyncIterable<Buffer>): Promise<void> {
  await pipeline(Readable.from(bytes, { objectMode: false }), res);
}

function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof MailcasError) {
    if (e.code === 'E_NOT_FOUND') return notFound();
    if (e.code === 'E_USAGE' || e.code === 'E_REFUSED') return new HttpError(400, 'bad_request', e.message);
    if (e.code === 'E_TOO_LARGE') return new HttpError(413, 'too_large', e.message);
    if (e.transient) return new HttpError(503, 'unavailable', `${e.message} (temporary: try again)`, { 'Retry-After': '5' });
    if (e.code === 'E_INTEGRITY' || e.code === 'E_CORRUPT') return new HttpError(500, 'damaged', e.message);
    return new HttpError(500, 'internal', e.message);
  }
  return new HttpError(500, 'internal', (e as Error)?.message ?? String(e));
}
