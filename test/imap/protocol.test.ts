// The IMAP front's pure pieces: command framing with literals, argument parsing, sequence sets,
// SEARCH criteria, and SHA-crypt password hashes checked against OpenSSL's.
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CommandFramer, parseCommand, parseSequenceSet } from '../../src/imap/command-parser.js';
import { parseSearch, type SearchFacts } from '../../src/imap/search.js';
import { parseFields } from '../../src/fetch/header.js';
import { PasswordFile, shaCrypt, verifyPassword } from '../../src/imap/passwd.js';

describe('command framing and parsing', () => {
  it('lines, synchronizing and non-synchronizing literals, split anywhere', () => {
    const input = Buffer.from('a1 LOGIN {2}\r\nu1 {3+}\r\np w\r\na2 FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)\r\n');
    for (const step of [1, 3, 7, input.length]) {
      const f = new CommandFramer();
      const events: string[] = [];
      for (let i = 0; i < input.length; i += step) {
        f.push(input.subarray(i, i + step));
        for (let e = f.next(); e; e = f.next()) events.push(e.kind === 'command' ? e.bytes.toString('latin1') : e.kind);
      }
      expect(events).toEqual(['continue', 'a1 LOGIN {2}\r\nu1 {3+}\r\np w\r\n', 'a2 FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)\r\n']);
    }
    const login = parseCommand(Buffer.from('a1 LOGIN {2}\r\nu1 {3+}\r\np w\r\n'));
    expect(login).toEqual({ tag: 'a1', name: 'LOGIN', args: [{ str: 'u1' }, { str: 'p w' }] });
    const fetch = parseCommand(Buffer.from('a2 uid fetch 1:* (UID BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)\r\n'));
    expect(fetch.name).toBe('UID FETCH');
    expect(fetch.args).toEqual([{ atom: '1:*' }, [{ atom: 'UID' }, { atom: 'BODY.PEEK[HEADER.FIELDS (From To)]<0.10>' }]]);
    expect(parseCommand(Buffer.from('t LIST "" "a \\"q\\""\r\n')).args).toEqual([{ str: '' }, { str: 'a "q"' }]);
    for (const bad of [')x NOOP\r\n', 'a\r\n', 'a FETCH (1\r\n', 'a LOGIN "open\r\n', 'a X {9}\r\nab\r\n']) expect(() => parseCommand(Buffer.from(bad)), bad).toThrow();
  });

  it('a line or a literal over the limit is an error, not unbounded memory', () => {
    const f = new CommandFramer();
    f.push(Buffer.from('a LOGIN {999999999}\r\n'));
    expect(f.next()).toMatchObject({ kind: 'error' });
    const g = new CommandFramer();
    g.push(Buffer.alloc(200 * 1024, 0x61));
    expect(g.next()).toMatchObject({ kind: 'error' });
  });

  it('sequence sets', () => {
    expect(parseSequenceSet('1:*', 5)).toEqual([[1, 5]]);
    expect(parseSequenceSet('4:2,7,*', 9)).toEqual([[2, 4], [7, 7], [9, 9]]);
    for (const bad of ['', '0', 'a', '1:0', '1,,2']) expect(parseSequenceSet(bad, 5), bad).toBeNull();
  });
});

describe('SEARCH', () => {
  const msg = (seq: number, size: number, received: string, header: string, flags: string[] = []): SearchFacts => ({
    seq,
    uid: seq * 10,
    size,
    received: Date.parse(received),
    flags,
    modseq: seq + 4,
    fields: async () => parseFields(Buffer.from(header)),
  });
  const box = [
    msg(1, 500, '2024-01-05T10:00:00Z', 'From: Alice <alice@example.com>\nSubject: Lunch plans\nDate: Thu, 4 Jan 2024 09:00:00 +0000\n\n'),
    msg(2, 5000, '2024-02-01T10:00:00Z', 'From: bob@example.org\nSubject: Invoice\nX-Tag: urgent\n\n', ['\\Seen', '$Work']),
    msg(3, 50, '2024-03-01T10:00:00Z', 'From: carol@example.net\nSubject: lunch?\n\n'),
  ];
  const run = async (q: string) => {
    const c = parseSearch(parseCommand(Buffer.from(`t SEARCH ${q}\r\n`)).args, { seq: 3, uid: 30 });
    const hits: number[] = [];
    for (const m of box) if (await c(m)) hits.push(m.seq);
    return hits;
  };
  it('header, size, date, UID, flags and keywords, MODSEQ, NOT, OR and groups; body text refused', async () => {
    expect(await run('ALL')).toEqual([1, 2, 3]);
    expect(await run('SUBJECT lunch')).toEqual([1, 3]);
    expect(await run('FROM "example.org"')).toEqual([2]);
    expect(await run('LARGER 100 SMALLER 1000')).toEqual([1]);
    expect(await run('SINCE 1-Feb-2024')).toEqual([2, 3]);
    expect(await run('BEFORE 1-Feb-2024')).toEqual([1]);
    expect(await run('SENTON 4-Jan-2024')).toEqual([1]);
    expect(await run('HEADER X-Tag urgent')).toEqual([2]);
    expect(await run('UID 20:*')).toEqual([2, 3]);
    expect(await run('NOT (OR SUBJECT invoice FROM alice)')).toEqual([3]);
    expect(await run('2:3 SEEN')).toEqual([2]);
    expect(await run('UNSEEN')).toEqual([1, 3]);
    expect(await run('KEYWORD $work')).toEqual([2]);
    expect(await run('UNKEYWORD $Work DELETED')).toEqual([]);
    expect(await run('OR FLAGGED NOT DELETED')).toEqual([1, 2, 3]);
    expect(await run('MODSEQ 6')).toEqual([2, 3]);
    expect(await run('MODSEQ "/flags/\\\\seen" all 7')).toEqual([3]);
    expect(await run('CHARSET UTF-8 UNSEEN 1')).toEqual([1]);
    await expect(run('BODY hello')).rejects.toThrow(/CANNOT/);
    await expect(run('CHARSET KOI8-R ALL')).rejects.toThrow(/BADCHARSET/);
    await expect(run('SINCE yesterday')).rejects.toThrow(/date/);
  });
});

describe('password file', () => {
  it("SHA-crypt ($6$, $5$, with rounds) equals OpenSSL's, and the other schemes verify", () => {
    for (const [alg, salt, pw] of [
      ['-6', 'abcdefgh', 'secret'],
      ['-6', 'saltsaltsaltsalt', 'a much longer password that is longer than sixty-four bytes in all, really'],
      ['-5', 'Q1', 'pässwörd'],
    ]) {
      const h = spawnSync('openssl', ['passwd', alg, '-salt', salt, pw]).stdout.toString().trim();
      expect(shaCrypt(Buffer.from(pw), h)).toBe(h);
      expect(verifyPassword(`{${alg === '-6' ? 'SHA512' : 'SHA256'}-CRYPT}${h}`, pw)).toBe(true);
      expect(verifyPassword(`{${alg === '-6' ? 'SHA512' : 'SHA256'}-CRYPT}${h}`, pw + '!')).toBe(false);
    }
    // rounds=N as glibc writes it (known vector from Drepper's specification)
    expect(shaCrypt(Buffer.from('Hello world!'), '$6$rounds=10000$saltstringsaltst')).toBe('$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.');
    const f = PasswordFile.parse('# users\nu1:plain-pw\nu2:{PLAIN}pw2\nu3:{SSHA256}' + ssha('pw3') + '\n');
    expect([f.verify('u1', 'plain-pw'), f.verify('u2', 'pw2'), f.verify('u3', 'pw3'), f.verify('u3', 'pw2'), f.verify('nobody', 'x')]).toEqual([true, true, true, false, false]);
    expect(() => PasswordFile.parse('u1:{MD5}abc\n')).toThrow(/not supported/);
  });
});

function ssha(pw: string): string {
  const salt = Buffer.from('saltsalt');
  return Buffer.concat([crypto.createHash('sha256').update(pw).update(salt).digest(), salt]).toString('base64');
}
