import { describe, expect, it } from 'vitest';
import { tokenize } from '../../src/split/tokenizer.js';
import { MemorySource } from '../../src/split/byte-source.js';

const tok = (s: string) => {
  const buf = Buffer.from(s, 'latin1');
  const t = tokenize(new MemorySource(buf));
  const segs = t.segments.map((x) => ({ kind: x.kind, text: buf.subarray(x.start, x.end).toString('latin1'), path: x.node?.path }));
  // every byte belongs to exactly one segment, in order
  expect(segs.map((x) => x.text).join('')).toBe(s);
  return { ...t, segs };
};

describe('tokenizer', () => {
  it('splits a simple message into header block and body', () => {
    const t = tok('Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n');
    expect(t.segs).toEqual([
      { kind: 'header', text: 'Subject: hi\r\nFrom: a@b\r\n\r\n', path: '' },
      { kind: 'body', text: 'body\r\n', path: '' },
    ]);
  });

  it('gives the line break before a delimiter to the delimiter, and numbers parts', () => {
    const m = 'Content-Type: multipart/mixed; boundary="b"\n\npre\n--b\nContent-Type: text/plain\n\none\n--b\n\ntwo\n--b--\nepi\n';
    const t = tok(m);
    expect(t.segs).toEqual([
      { kind: 'header', text: 'Content-Type: multipart/mixed; boundary="b"\n\n', path: '' },
      { kind: 'literal', text: 'pre\n--b\n', path: undefined },
      { kind: 'header', text: 'Content-Type: text/plain\n\n', path: '1' },
      { kind: 'body', text: 'one', path: '1' },
      { kind: 'literal', text: '\n--b\n', path: undefined },
      { kind: 'header', text: '\n', path: '2' },
      { kind: 'body', text: 'two', path: '2' },
      { kind: 'literal', text: '\n--b--\nepi\n', path: undefined },
    ]);
    expect(t.root.kind).toBe('multipart');
    expect(t.root.children.map((c) => c.path)).toEqual(['1', '2']);
  });

  it('keeps transport padding on delimiter lines and CRLF', () => {
    const t = tok('Content-Type: multipart/mixed; boundary=xyz\r\n\r\n--xyz  \t\r\n\r\nA\r\n--xyz--  \r\n');
    expect(t.segs.filter((s) => s.kind === 'body').map((s) => s.text)).toEqual(['A']);
    expect(t.segs.some((s) => s.text.includes('--xyz  \t\r\n'))).toBe(true);
  });

  it('nested multiparts, an outer delimiter closes an unterminated inner part', () => {
    const m = [
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      '',
      'plain',
      '--inner',
      'Content-Type: text/html',
      '',
      '<p>html</p>',
      '--outer',
      'Content-Type: image/png',
      'Content-Transfer-Encoding: base64',
      '',
      'iVBORw0KGgo=',
      '--outer--',
      '',
    ].join('\n');
    const t = tok(m);
    expect(t.segs.filter((s) => s.kind === 'body').map((s) => [s.path, s.text])).toEqual([
      ['1.1', 'plain'],
      ['1.2', '<p>html</p>'],
      ['2', 'iVBORw0KGgo='],
    ]);
  });

  it('message/rfc822 is parsed into, also as an attachment', () => {
    const m = [
      'Content-Type: multipart/mixed; boundary=b',
      '',
      '--b',
      'Content-Type: message/rfc822',
      'Content-Disposition: attachment',
      '',
      'Subject: inner',
      'Content-Type: multipart/mixed; boundary=c',
      '',
      '--c',
      'Content-Type: application/pdf',
      'Content-Transfer-Encoding: base64',
      '',
      'JVBERi0=',
      '--c--',
      '--b--',
    ].join('\r\n');
    const t = tok(m);
    const body = t.segs.find((s) => s.kind === 'body');
    expect(body).toEqual({ kind: 'body', text: 'JVBERi0=', path: '1.1' });
    expect(t.root.children[0].kind).toBe('message');
  });

  it('missing close delimiter: the last part runs to the end', () => {
    const t = tok('Content-Type: multipart/mixed; boundary=b\n\n--b\n\nlast part\nno close\n');
    expect(t.segs.at(-1)).toEqual({ kind: 'body', text: 'last part\nno close\n', path: '1' });
  });

  it('part headers cut off by the next delimiter, a part with no blank line (all header, as RFC 5322 readers and Dovecot take it), garbage after the close', () => {
    const m = 'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n--b\nnot a header line\nmore\n--b--\ngarbage\n--b\nafter close\n';
    const t = tok(m);
    expect(t.segs.filter((s) => s.kind === 'body').map((s) => s.text)).toEqual(['', '']);
    expect(t.segs.filter((s) => s.kind === 'header').map((s) => s.text)).toEqual(['Content-Type: multipart/mixed; boundary=b\n\n', 'Content-Type: text/plain\n', 'not a header line\nmore\n']);
  });

  it('a boundary that only prefixes a longer line is not a delimiter', () => {
    const t = tok('Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--bb is text\n--b--\n');
    expect(t.segs.filter((s) => s.kind === 'body').map((s) => s.text)).toEqual(['--bb is text']);
  });

  it('an mbox From_ first line stays in the header block', () => {
    const t = tok('From alice@example.com Sat Jan  3 01:05:34 1996\nSubject: x\n\nbody\n');
    expect(t.segs[0]).toEqual({ kind: 'header', text: 'From alice@example.com Sat Jan  3 01:05:34 1996\nSubject: x\n\n', path: '' });
  });

  it('headers only, empty input, bare CR, NUL and 8-bit bytes', () => {
    tok('Subject: no body');
    tok('Subject: no body\n');
    tok('');
    tok('\r\n\r\n');
    tok('Subject: cr\r\rbody\rmore\r');
    tok('Subject: \x00\xff\xfe\n\n\x00\x80\x81 body\n');
    // everything up to the blank line is the header block, malformed lines too
    const t = tok('no header here\njust text\n\nthe body\n');
    expect(t.segs[0]).toEqual({ kind: 'header', text: 'no header here\njust text\n\n', path: '' });
  });

  it('deep nesting beyond the limit is kept as an opaque body', () => {
    let m = '';
    for (let i = 0; i < 100; i++) m += `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n`;
    m += '\ninnermost\n';
    tok(m);
  });
});
