import http from 'node:http';
import { once } from 'node:events';
import type { Store } from '../store.js';
import { apiHandler, type ApiOptions } from './http-api.js';
import type { Tokens } from './tokens.js';
import type net from 'node:net';
import { DEFAULT_CONNECTIONS_PER_ADDRESS, DEFAULT_HTTP_MAX_CONNECTIONS, HTTP_REQUEST_TIMEOUT_MS } from '../limits.js';

export interface HttpServiceOptions extends ApiOptions {
  /** Connections at once; more wait in the kernel's backlog. */
  maxConnections?: number;
  /** A connection idle this long is closed (ms). */
  idleTimeoutMs?: number;
  /** The request line and headers must arrive within this (ms). */
  headersTimeoutMs?: number;
  /** Connections one remote address may hold at once (DEFAULT_CONNECTIONS_PER_ADDRESS); more get 503 and are closed. */
  maxPerAddress?: number;
}

export { DEFAULT_HTTP_MAX_CONNECTIONS };

/** `mailcas serve`: the HTTP API on node:http, with limits and a graceful stop. */
export class HttpService {
  readonly server: http.Server;
  readonly handler: ReturnType<typeof apiHandler>;
  private readonly connections = new Set<net.Socket>();
  /** Connections with a request whose answer is under way (they may finish on close). */
  private readonly answering = new Set<net.Socket>();

  constructor(store: Store, tokens: Tokens, opts: HttpServiceOptions) {
    this.handler = apiHandler(store, tokens, opts);
    const headersTimeout = opts.headersTimeoutMs ?? HTTP_REQUEST_TIMEOUT_MS;
    this.server = http.createServer(
      {
        maxHeaderSize: 16 * 1024,
        headersTimeout,
        requestTimeout: Math.max(headersTimeout, HTTP_REQUEST_TIMEOUT_MS),
        // Node looks for requests past their timeout this often (30 s by default: a 10 s limit would act at 10-40 s)
        connectionsCheckingInterval: 1000,
        keepAliveTimeout: 5_000,
      },
      this.handler,
    );
    this.server.maxConnections = opts.maxConnections ?? DEFAULT_HTTP_MAX_CONNECTIONS;
    this.server.setTimeout(opts.idleTimeoutMs ?? 60_000, (socket) => socket.destroy());
    // one address holds a bounded share of the connections: a host of half-sent requests cannot take them all
    const perAddress = new Map<string, number>();
    const maxPerAddress = opts.maxPerAddress ?? DEFAULT_CONNECTIONS_PER_ADDRESS;
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const sock = req.socket;
      this.answering.add(sock);
      res.once('close', () => this.answering.delete(sock));
    });
    this.server.on('connection', (socket: net.Socket) => {
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
      const addr = socket.remoteAddress ?? '';
      const n = perAddress.get(addr) ?? 0;
      if (n >= maxPerAddress) return void closeWith(socket, '503 Service Unavailable', `too many connections from your address (the limit is ${maxPerAddress})`);
      perAddress.set(addr, n + 1);
      socket.once('close', () => {
        const left = (perAddress.get(addr) ?? 1) - 1;
        if (left > 0) perAddress.set(addr, left);
        else perAddress.delete(addr);
      });
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // requests that never reached the API: headers over the limit (431), too slow (408), not HTTP (400)
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      closeWith(socket as net.Socket, status, '');
    });
  }

  async listen(where: { host: string; port: number } | { socket: string }): Promise<string> {
    if ('socket' in where) this.server.listen(where.socket);
    else this.server.listen(where.port, where.host);
    await once(this.server, 'listening');
    const a = this.server.address();
    return typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a);
  }

  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes what is left. */
  async close(graceMs = 10_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // connections with no answer under way (idle, or a request still arriving: a slow or hostile client) go now
    for (const s of this.connections) if (!this.answering.has(s)) s.destroy();
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
  }
}

/** Answers a connection with a status and closes it: a peer that keeps its side open is cut off a second later (its slot freed). */
function closeWith(socket: net.Socket, status: string, text: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}
