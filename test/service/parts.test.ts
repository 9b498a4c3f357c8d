// The HTTP service's pure pieces: Range headers, the tokens file, FETCH item lists.
import { describe, expect, it } from 'vitest';
import { parseRange } from '../../src/service/range-header.js';
import { Tokens } from '../../src/service/tokens.js';
import { parseFetchItems } from '../../src/fetch/fetch-items.js';

describe('Range header', () => {
  it('one range in its three forms; several, other units and nonsense mean the whole; past the end is unsatisfiable', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'whole' });
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'range', start: 0, end: 10 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'range', start: 90, end: 100 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'range', start: 90, end: 100 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'range', start: 0, end: 100 });
    expect(parseRange('bytes=50-5000', 100)).toEqual({ kind: 'range', start: 50, end: 100 });
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
    for (const h of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-1', 'bytes=x-y', 'bytes=-']) expect(parseRange(h, 100), h).toEqual({ kind: 'whole' });
  });
});

describe('tokens file', () => {
  it('TOKEN USER[,USER...] and TOKEN *; comments and blank lines skipped; malformed lines named', () => {
    const t = Tokens.parse('# comment\n\nabc u1,u2\nroot *\n');
    expect(t.size).toBe(2);
    expect(t.grants('abc', 'u1')).toBe(true);
    expect(t.grants('abc', 'u3')).toBe(false);
    expect(t.grants('root', 'anyone')).toBe(true);
    expect(t.grants('abd', 'u1')).toBeNull();
    expect(t.grants('abc')).toBe(true);
    expect(() => Tokens.parse('justone\n')).toThrow(/line 1/);
    expect(() => Tokens.parse('a u1\na u2\n')).toThrow(/twice/);
  });
});

describe('FETCH item lists', () => {
  it('items, macros, sections with field lists and partials; response names as IMAP gives them', () => {
    const items = parseFetchItems('(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From Subject)] BODY[1.2.MIME] BINARY[2]<0.1024> BINARY.SIZE[2] RFC822.HEADER)');
    expect(items.map((i) => ('name' in i ? i.name : ''))).toEqual(['UID', 'RFC822.SIZE', 'BODY[HEADER.FIELDS (From Subject)]', 'BODY[1.2.MIME]', 'BINARY[2]<0>', 'BINARY.SIZE[2]', 'RFC822.HEADER']);
    expect(parseFetchItems('ALL').map((i) => i.name)).toEqual(['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE']);
    for (const bad of ['', '(', 'BODY[', 'NOPE', 'BINARY[HEADER]', 'BINARY.SIZE[1]<0.1>', 'BODY[1.MIME.X]', 'BODY[0]']) expect(() => parseFetchItems(bad), bad).toThrow();
  });
});
