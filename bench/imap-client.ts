import type { Readable, Writable } from 'node:stream';

/** A minimal IMAP client: sends a tagged command, reads to its tagged answer (literals skipped without copying). */
export class ImapClient {
  private chunks: Buffer[] = [];
  private waiting: (() => void) | null = null;
  private n = 0;
  constructor(
    input: Readable,
    private readonly output: Writable,
  ) {
    input.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.waiting?.();
    });
    // a server that goes away fails the request waiting on it (instead of leaving it pending forever)
    input.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }
  private closed = false;
  private async more(): Promise<void> {
    if (this.closed) throw new Error('the server closed the connection');
    await new Promise<void>((r) => (this.waiting = r));
    this.waiting = null;
    if (this.closed && !this.chunks.length) throw new Error('the server closed the connection');
  }
  /** One line (to LF), joining only the chunks it spans. */
  private async readLine(): Promise<string> {
    let parts: Buffer[] = [];
    for (;;) {
      while (!this.chunks.length) await this.more();
      const c = this.chunks[0];
      const lf = c.indexOf(0x0a);
      if (lf < 0) {
        parts.push(c);
        this.chunks.shift();
        continue;
      }
      parts.push(c.subarray(0, lf + 1));
      if (lf + 1 < c.length) this.chunks[0] = c.subarray(lf + 1);
      else this.chunks.shift();
      const line = Buffer.concat(parts).toString('latin1');
      parts = [];
      return line;
    }
  }
  private async skip(n: number): Promise<void> {
    while (n > 0) {
      while (!this.chunks.length) await this.more();
      const c = this.chunks[0];
      if (c.length <= n) {
        n -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
  /** The next line (with any literals it announces skipped); returns its text and byte length. */
  private async line(): Promise<{ text: string; bytes: number }> {
    let text = '';
    let bytes = 0;
    for (;;) {
      const l = await this.readLine();
      text += l;
      bytes += l.length;
      const lit = /~?\{(\d+)\}\r\n$/.exec(l);
      if (!lit) return { text, bytes };
      const n = Number(lit[1]);
      await this.skip(n);
      bytes += n;
    }
  }
  async greeting(): Promise<string> {
    return (await this.line()).text;
  }
  async run(cmd: string): Promise<number> {
    const tag = `b${++this.n}`;
    this.output.write(`${tag} ${cmd}\r\n`);
    let bytes = 0;
    for (;;) {
      const l = await this.line();
      bytes += l.bytes;
      if (l.text.startsWith(`${tag} `)) {
        if (!l.text.startsWith(`${tag} OK`)) throw new Error(`${cmd}: ${l.text}`);
        return bytes;
      }
    }
  }
}
