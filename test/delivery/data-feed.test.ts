import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { createRequire } from 'node:module';
import { DATA_FEED_FOR_VERSION, feedDataStream, installDataFeed, packageFeedDataStream } from '../../src/delivery/data-feed.js';

type Feed = typeof feedDataStream;

/** Runs one DATA phase and what follows it through a real SMTPStream with the given feed: the message bytes, the byte count, the commands after. */
async function parse(feed: Feed, chunks: Buffer[], turns = 50): Promise<{ ended: boolean; data: string; bytes: number; commands: string[] }> {
  const parser = new SMTPStream();
  (parser as unknown as { _feedDataStream: Feed })._feedDataStream = feed;
  const commands: string[] = [];
  parser.oncommand = (cmd: Buffer, cb?: () => void) => {
    commands.push(cmd.toString('latin1'));
    cb?.();
  };
  const ds = parser.startDataMode(Infinity);
  const out: Buffer[] = [];
  ds.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise<void>((r) => ds.on('end', () => r()));
  ds.on('end', () => parser.continue());
  let done = false;
  void ended.then(() => (done = true));
  // a chunk waits (no callback) while the parser waits for continue(): write on without waiting
  for (const c of chunks) parser.write(c);
  for (let i = 0; i < turns && !done; i++) await new Promise((r) => setImmediate(r));
  if (done) await new Promise<void>((r) => parser.end(() => r()));
  return { ended: done, data: Buffer.concat(out).toString('latin1'), bytes: ds.byteLength, commands };
}

const TOKENS = ['\r\n', '.', '..', '\r\n.\r\n', '\r\n..\r\n', 'ab', '\n', '\r', '\n.', '.\r\n', 'x'.repeat(50)];

function randomCase(rnd: () => number): { wire: Buffer; chunks: Buffer[] } {
  let s = '';
  const n = Math.floor(rnd() * 40);
  for (let i = 0; i < n; i++) s += TOKENS[Math.floor(rnd() * TOKENS.length)];
  // the terminator and a pipelined command after it (the smuggling shape: what follows must stay a command)
  // (now and then no terminator at all: both must then still be waiting for it)
  const end = rnd() < 0.1 ? '' : rnd() < 0.8 || !(s === '' || s.endsWith('\r\n')) ? '\r\n.\r\n' : '.\r\n';
  const wire = Buffer.from(s + end + 'RSET\r\nQUIT\r\n', 'latin1');
  const chunks: Buffer[] = [];
  for (let p = 0; p < wire.length; ) {
    const k = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 4 : 64));
    chunks.push(wire.subarray(p, p + k));
    p += k;
  }
  return { wire, chunks };
}

describe('the DATA feed (smtp-server parser, native search)', () => {
  it('decides exactly as the package does: same message bytes, byte count and commands after, over random input and chunkings', async () => {
    let seed = 12345;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    let ended = 0;
    for (let k = 0; k < 1500; k++) {
      const { wire, chunks } = randomCase(rnd);
      const theirs = await parse(packageFeedDataStream as Feed, chunks);
      const ours = await parse(feedDataStream, chunks);
      expect(ours, JSON.stringify(wire.toString('latin1'))).toEqual(theirs);
      ended += ours.ended ? 1 : 0;
    }
    expect(ended).toBeGreaterThan(1000); // most cases end their DATA (the rest never send a terminator)
  });

  it('a large message in socket-sized chunks: dot-unstuffed exactly, ended at the marker', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? '.' : '') + crypto.randomBytes(30).toString('base64'));
    const body = lines.join('\r\n') + '\r\n';
    const wire = Buffer.from(body.replace(/^\./gm, '..') + '.\r\nQUIT\r\n');
    const chunks: Buffer[] = [];
    for (let p = 0; p < wire.length; p += 65536) chunks.push(wire.subarray(p, p + 65536));
    const ours = await parse(feedDataStream, chunks, 100_000);
    expect(ours.data).toBe(body);
    expect(ours.bytes).toBe(body.length);
    expect(ours.commands).toEqual(['QUIT']);
    expect(ours.ended).toBe(true);
    expect(ours).toEqual(await parse(packageFeedDataStream as Feed, chunks, 100_000));
  });

  it('is installed for the pinned smtp-server version (package.json pins exactly the one it was written for)', () => {
    const pinned = (createRequire(import.meta.url)('../../package.json') as { dependencies: Record<string, string> }).dependencies['smtp-server'];
    expect(pinned).toBe(DATA_FEED_FOR_VERSION);
    expect(installDataFeed()).toBe(true);
    expect(SMTPStream.prototype._feedDataStream).toBe(feedDataStream);
  });
});
