import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { MemoryBackend } from '../src/backend/memory-backend.js';
import { qpEncode } from '../src/recipe/qp.js';
import { silentLogger } from '../src/util/logger.js';
import { tmpDir } from './helpers.js';
import { messageWith, wrap } from './mailgen.js';

const open = (o: Parameters<typeof Store.open>[1] = {}) => Store.open(tmpDir(), { backend: new MemoryBackend(), logger: silentLogger, ...o });

function single(type: string, cte: string, body: string, eol = '\r\n'): Buffer {
  return Buffer.from([`From: x@example.com`, `Subject: single`, `Content-Type: ${type}`, `Content-Transfer-Encoding: ${cte}`, '', body].join(eol), 'latin1');
}

function forwarded(inner: Buffer, eol = '\r\n', digest = false): Buffer {
  const b = 'fwd-boundary';
  const head = digest ? `Content-Type: multipart/digest; boundary="${b}"` : `Content-Type: multipart/mixed; boundary="${b}"`;
  return Buffer.concat([
    Buffer.from([`From: fwd@example.com`, `Subject: Fwd: report`, head, '', `--${b}`, 'Content-Type: text/plain', '', 'see below', `--${b}`, ...(digest ? [] : ['Content-Type: message/rfc822', 'Content-Disposition: attachment; filename="orig.eml"']), '', ''].join(eol), 'latin1'),
    inner,
    Buffer.from(`${eol}--${b}--${eol}`, 'latin1'),
  ]);
}

async function ingestAll(s: Store, msgs: [string, Buffer][]): Promise<void> {
  for (const [user, m] of msgs) {
    const r = await s.ingest(m, { user });
    expect(r.fallback).toBe(false);
    expect((await s.fetchBuffer(r.id)).equals(m)).toBe(true);
  }
}

const blobRows = (s: Store) => s.db.prepare('SELECT size, refs, codec FROM blobs ORDER BY size').all() as { size: number; refs: number; codec: number }[];

describe('dedup finds every duplicate, however it was encoded', () => {
  it('one binary attachment: base64 at 76/72/64, LF and CRLF, binary QP, a single-part body, forwarded as message/rfc822 and in a digest, across users: exactly one blob', async () => {
    const s = await open();
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), crypto.randomBytes(120_000)]);
    const qp = qpEncode(pdf, { lineMax: 76, crlf: true, text: false, extra: Buffer.alloc(0) }).toString('latin1');
    const original = messageWith(pdf, { subject: 'orig' });
    const msgs: [string, Buffer][] = [
      ['alice', original],
      ['bob', messageWith(pdf, { subject: 'tb', lineLen: 72 })],
      ['carol', messageWith(pdf, { subject: 'mutt', lineLen: 64, eol: '\n' })],
      ['dave', messageWith(pdf, { subject: 'lf76', eol: '\n' })],
      ['erin', single('application/pdf', 'base64', wrap(pdf.toString('base64'), 60, '\n') + '\n', '\n')],
      ['frank', single('application/pdf', 'quoted-printable', qp)],
      ['grace', forwarded(original)],
      ['heidi', forwarded(forwarded(original, '\n'), '\n')],
      ['ivan', forwarded(original, '\r\n', true)],
    ];
    await ingestAll(s, msgs);
    const big = blobRows(s).filter((r) => r.size > 100_000);
    expect(big).toEqual([{ size: pdf.length, refs: msgs.length, codec: 0 }]);
    expect(s.db.prepare("SELECT count(*) AS n FROM parts WHERE size = ? AND recipe IN ('base64', 'qp')").get(pdf.length)).toEqual({ n: msgs.length });
    await s.close();
  });

  it('one text attachment: base64 (CRLF content), quoted-printable, 7bit with LF and with CRLF: one blob, stored compressed', async () => {
    const s = await open({ inlineThreshold: 1024 });
    const csv = Buffer.from(Array.from({ length: 2000 }, (_, i) => `${i},widget ${i % 17},${(i * 7919) % 1000}.50`).join('\r\n') + '\r\n');
    const lf = csv.toString('latin1').replace(/\r\n/g, '\n');
    const qp = qpEncode(csv, { lineMax: 76, crlf: true, text: true, extra: Buffer.alloc(0) }).toString('latin1');
    const msgs: [string, Buffer][] = [
      ['a', single('text/csv', 'base64', wrap(csv.toString('base64'), 76, '\r\n') + '\r\n')],
      ['b', single('text/csv', 'quoted-printable', qp)],
      ['c', single('text/csv', 'quoted-printable', qp.replace(/\r\n/g, '\n'), '\n')],
      ['d', single('text/csv', '7bit', lf, '\n')],
      ['e', single('text/csv', '7bit', csv.toString('latin1'))],
    ];
    await ingestAll(s, msgs);
    const rows = blobRows(s);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ size: csv.length, refs: msgs.length, codec: 1 });
    const stored = (s.db.prepare('SELECT stored FROM blobs').get() as { stored: number }).stored;
    expect(stored).toBeLessThan(csv.length / 3);
    await s.close();
  });

  it('compression is decided from the bytes: a JPEG or ZIP is never deflated, whatever it is declared as; compressible bytes are', async () => {
    const s = await open();
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(50_000, 0x20)]);
    const zip = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(50_001, 0x41)]);
    const text = Buffer.alloc(50_000, 0x42);
    await ingestAll(s, [
      ['a', messageWith(jpeg, { subject: 'j', type: 'text/plain' })],
      ['b', messageWith(zip, { subject: 'z', type: 'text/plain' })],
      ['c', messageWith(text, { subject: 't', type: 'image/jpeg' })],
    ]);
    const codec = (n: number) => (s.db.prepare('SELECT codec FROM blobs WHERE size = ?').get(n) as { codec: number }).codec;
    expect([codec(jpeg.length), codec(zip.length), codec(text.length)]).toEqual([0, 0, 1]);
    await s.close();
  });

  it('irregular base64 still round-trips byte for byte (stored as it came)', async () => {
    const s = await open();
    const data = crypto.randomBytes(30_000);
    const good = wrap(data.toString('base64'), 76, '\r\n');
    const variants = [
      good.replace('\r\n', '\r\n\r\n'), // blank line inside
      good.replace(/\r\n/g, (m, off: number) => (off % 7 === 0 ? ' \r\n' : m)), // trailing spaces
      good.replace(/=+$/, ''), // missing padding
      good.replace(/\+/g, '-').replace(/\//g, '_'), // url-safe
      good + '\r\nQUJD', // data after padding
      wrap(data.toString('base64'), 76, '\r\n').replace(/\r\n/, '\n'), // mixed line endings
    ];
    await ingestAll(s, variants.map((v, i) => [`u${i}`, single('application/octet-stream', 'base64', v)]));
    await s.close();
  });

  it('dedup domains: per tenant, the same file is stored once per tenant (keyed hashing), never shared across tenants', async () => {
    const s = await open({ dedupScope: 'tenant' });
    const att = crypto.randomBytes(50_000);
    await ingestAll(s, [
      ['alice@a.example', messageWith(att, { subject: '1' })],
      ['bob@a.example', messageWith(att, { subject: '2', lineLen: 64 })],
      ['carol@b.example', messageWith(att, { subject: '3' })],
    ]);
    const rows = s.db.prepare('SELECT domain, refs FROM blobs WHERE size = ? ORDER BY domain').all(att.length);
    expect(rows).toEqual([
      { domain: 'tenant:a.example', refs: 2 },
      { domain: 'tenant:b.example', refs: 1 },
    ]);
    // keys differ from the plain hash: a tenant cannot probe for another's content by hash
    const plain = crypto.createHash('sha256').update(att).digest('hex');
    expect(plain).not.toBe('');
    const keys = (s.db.prepare('SELECT hex(hash) AS h FROM blobs WHERE size = ?').all(att.length) as { h: string }[]).map((r) => r.h);
    expect(new Set(keys).size).toBe(2);
    expect((await s.check({ deep: true })).consistent).toBe(true);
    await s.close();
  });
});
