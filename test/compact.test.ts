// compact: older mail's header blocks recompressed with a dictionary trained on
// the store as it is; every message stays byte-exact, and other work goes on.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { corpusFiles, runCli, tmpDir } from './helpers.js';

const files = corpusFiles().filter((_, i) => i % 4 === 0); // ~350 real messages

async function filled(dir: string) {
  // a dictionary trained early (on the first 64 messages), as a store that grew would have
  const s = await Store.open(dir, { logger: silentLogger, dictionaryAfter: 64 });
  const ids: { id: string; f: string }[] = [];
  for (const f of files) ids.push({ id: (await s.ingest({ path: f }, { user: 'u' })).id, f });
  return { s, ids };
}

describe('compact', () => {
  it('rewrites older layouts smaller with a freshly trained dictionary; every message and header answer unchanged; a second run has nothing to do', async () => {
    const { s, ids } = await filled(tmpDir());
    const headers = new Map<string, Buffer>();
    for (const { id } of ids.slice(0, 50)) headers.set(id, await s.access(id).buffer(0, s.get(id).size)); // whole, through the same path as sections
    const layoutBytes = () => (s.db.prepare('SELECT sum(length(layout)) AS n FROM messages').get() as { n: number }).n;
    const before = layoutBytes();

    // nothing is old enough yet
    const none = await s.compact({ olderThanMs: 3600_000 });
    expect(none.messages).toBe(0);
    expect(none.rewritten).toBe(0);

    const r = await s.compact({ olderThanMs: 0, vacuum: true });
    expect(r.messages).toBe(ids.length);
    expect(r.dictionary).not.toBeNull(); // trained now, or the store's newest when that is as good
    expect(r.rewritten).toBeGreaterThan(ids.length / 2);
    expect(r.bytesAfter).toBeLessThan(r.bytesBefore * 0.95);
    expect(before - layoutBytes()).toBe(r.bytesBefore - r.bytesAfter);
    expect(r.pagesFreed).toBeGreaterThan(0);
    const used = s.db.prepare('SELECT count(*) AS n FROM messages WHERE dict = ?').get(r.dictionary) as { n: number };
    expect(used.n).toBe(r.rewritten);
    // inline bodies: a dictionary of their own
    expect(r.inlineDictionary).not.toBeNull();
    expect(r.inlineDictionary).not.toBe(r.dictionary);
    expect(r.inlineRewritten).toBeGreaterThan(0);
    expect(r.inlineBytesAfter).toBeLessThan(r.inlineBytesBefore * 0.95);
    expect((s.db.prepare('SELECT count(*) AS n FROM messages WHERE inline_dict = ? AND inline_codec = 2').get(r.inlineDictionary) as { n: number }).n).toBe(r.inlineRewritten);

    for (const { id, f } of ids) expect((await s.fetchBuffer(id)).equals(fs.readFileSync(f))).toBe(true);
    for (const [id, b] of headers) expect((await s.access(id).buffer(0, b.length)).equals(b)).toBe(true);
    expect((await s.check()).consistent).toBe(true);

    const again = await s.compact({ olderThanMs: 0 });
    expect({ trained: again.trained, rewritten: again.rewritten, inline: again.inlineRewritten }).toEqual({ trained: false, rewritten: 0, inline: 0 });
    // new mail uses the new header dictionary (never the inline one)
    const n = await s.ingest({ path: files[3] }, { user: 'v' });
    expect((s.db.prepare('SELECT dict FROM messages WHERE id = ?').get(Number(n.id)) as { dict: number }).dict).toBe(r.dictionary);
    await s.close();
  });

  it('runs while the store takes new mail and expunges (a row expunged meanwhile is skipped, nothing lost); the CLI reports JSON', async () => {
    const dir = tmpDir();
    const { s, ids } = await filled(dir);
    const more: { id: string; f: string }[] = [];
    const work = (async () => {
      for (const f of files.slice(0, 60)) more.push({ id: (await s.ingest({ path: f }, { user: 'w' })).id, f });
      await s.expunge('u', ids.slice(0, 40).map((x) => x.id));
    })();
    const [r] = await Promise.all([s.compact({ olderThanMs: 0 }), work]);
    expect(r.rewritten).toBeGreaterThan(0);
    for (const { id, f } of [...ids.slice(40), ...more]) expect((await s.fetchBuffer(id)).equals(fs.readFileSync(f))).toBe(true);
    expect((await s.check()).consistent).toBe(true);
    await s.close();

    const c = await runCli(['--store', dir, 'compact', '--older-than', '0', '--vacuum', '--json']);
    expect(c.code).toBe(0);
    const j = JSON.parse(c.stdout.toString());
    expect(Object.keys(j).sort()).toEqual(['bytesAfter', 'bytesBefore', 'dictionary', 'inlineBytesAfter', 'inlineBytesBefore', 'inlineDictionary', 'inlineRewritten', 'messages', 'pagesFreed', 'rewritten', 'trained']);
    expect(j.messages).toBe(ids.length - 40 + more.length);
    expect((await runCli(['--store', dir, 'check'])).code).toBe(0);
    const bad = await runCli(['--store', dir, 'compact', '--older-than', 'soon']);
    expect(bad.code).toBe(64);
  });
});
