import { MailcasError } from '../errors.js';

/** Growable little binary writer: varints (up to 2^53) and length-prefixed bytes. */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(256);
  private n = 0;
  private ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const nb = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(nb, 0, 0, this.n);
    this.buf = nb;
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.n++] = v;
    return this;
  }
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new MailcasError('E_INTERNAL', `bad varint ${v}`);
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.n++] = v;
    return this;
  }
  raw(b: Buffer): this {
    this.ensure(b.length);
    b.copy(this.buf, this.n);
    this.n += b.length;
    return this;
  }
  bytes(b: Buffer): this {
    return this.varint(b.length).raw(b);
  }
  str(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.n));
  }
}

export class ByteReader {
  private p = 0;
  constructor(private readonly buf: Buffer) {}
  private need(k: number): void {
    if (this.p + k > this.buf.length) throw new MailcasError('E_CORRUPT', 'truncated record');
  }
  get atEnd(): boolean {
    return this.p >= this.buf.length;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.p++];
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
    throw new MailcasError('E_CORRUPT', 'bad varint');
  }
  raw(k: number): Buffer {
    this.need(k);
    const b = this.buf.subarray(this.p, this.p + k);
    this.p += k;
    return b;
  }
  bytes(): Buffer {
    return this.raw(this.varint());
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
}
