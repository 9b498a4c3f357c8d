import http from 'node:http';
import { once } from 'node:events';
import type { Store } from '../store.js';
import type { Logger } from '../util/logger.js';
import { apiHandler, type ApiOptions } from './http-api.js';
import type { Tokens } from './tokens.js';
import { DEFAULT_HTTP_MAX_CONNECTIONS } from '../limits.js';

export interface HttpServiceOptions extends ApiOptions {
  /** Connections at once; more wait in the kernel's backlog. */
  maxConnections?: number;
  /** A connection idle this long is closed (ms). */
  idleTimeoutMs?: number;
  /** The request line and headers must arrive within this (ms). */
  headersTimeoutMs?: number;
}

export { DEFAULT_HTTP_MAX_CONNECTIONS };

/** `mailcas serve`: the HTTP API on node:http, with limits and a graceful stop. */
export class HttpService {
  readonly server: http.Server;
  readonly handler: ReturnType<typeof apiHandler>;
  private readonly log: Logger;

  constructor(store: Store, tokens: Tokens, opts: HttpServiceOptions) {
    this.log = opts.log;
    this.handler = apiHandler(store, tokens, opts);
    this.server = http.createServer({ maxHeaderSize: 16 * 1024, headersTimeout: opts.headersTimeoutMs ?? 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 }, this.handler);
    this.server.maxConnections = opts.maxConnections ?? DEFAULT_HTTP_MAX_CONNECTIONS;
    this.server.setTimeout(opts.idleTimeoutMs ?? 60_000, (socket) => socket.destroy());
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // requests that never reached the API: headers over the limit (431), too slow (408), not HTTP (400)
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      else socket.destroy();
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
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
  }
}
