/**
 * Compaction of older mail's metadata: header blocks, then inline bodies,
 * recompressed with dictionaries trained on the whole store as it is now (one
 * for each: they share little), at deflate's highest level. The log-structured counterpart of cold packs: new mail is written
 * fast (level 6, whatever dictionary the store had then); what has settled is
 * rewritten once, smaller.
 *
 * Safe at any moment and with other processes at work: each rewrite is
 * checked to decode to exactly the bytes it replaces, and applied with a
 * compare-and-set on the old bytes (a row changed or expunged meanwhile is
 * left alone); the dictionary is committed before any row names it; a crash
 * leaves rows in the old form or the new, both readable. Reads never wait.
 */
import zlib from 'node:zlib';
import { LayoutCodec, packLayout, unpackLayout } from '../layout/layout-codec.js';
import { addDictionary, sampleHeaderBlocks, sampleInlineBodies, trainDictionary, type DictionaryDeps, type DictionaryKind } from './dictionary.js';
import { immediate } from './db.js';
import { crashPoint } from '../util/crash-points.js';

export interface CompactOptions {
  /** Messages received at least this long ago (0: all). */
  olderThanMs: number;
  now?: () => number;
  /**
   * Then rebuild the database file (SQLite VACUUM), so the space the smaller
   * rows left inside pages is given back: needs free disk as large as the
   * database, and writers in other processes wait for it (past their busy
   * timeout they fail temporarily: an MTA retries).
   */
  vacuum?: boolean;
  /** Called after each batch: messages looked at so far, of total. */
  progress?: (done: number, total: number) => void;
}

export interface CompactReport {
  /** The dictionary rewritten header blocks use, and whether this run trained it. */
  dictionary: number | null;
  trained: boolean;
  /** Messages old enough to look at, and those whose header blocks were rewritten (smaller by at least 1%). */
  messages: number;
  rewritten: number;
  /** Compressed header bytes of the rewritten messages, before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** The same for inline bodies (with a dictionary of their own, trained on the store's inline bodies). */
  inlineDictionary: number | null;
  inlineRewritten: number;
  inlineBytesBefore: number;
  inlineBytesAfter: number;
  /** Database pages freed (reused by new mail; with vacuum, given back to the filesystem). */
  pagesFreed: number;
}

const LEVEL = 9;
const BATCH = 500;
const ROW_MAX_BYTES = 64 * 1024;

/** The compressed size of the sample's layouts with a dictionary. */
function sampleCost(heads: Buffer[], dict: Buffer): number {
  let n = 0;
  for (const h of heads) n += h.length < 64 ? h.length : zlib.deflateRawSync(h, { level: LEVEL, dictionary: dict }).length;
  return n;
}

/** One kind of compressed column: the header blocks (layout) or the inline bodies. */
interface Target {
  kind: DictionaryKind;
  data: 'layout' | 'inline';
  codec: 'codec' | 'inline_codec';
  dict: 'dict' | 'inline_dict';
}
const TARGETS: Target[] = [
  { kind: 'header', data: 'layout', codec: 'codec', dict: 'dict' },
  { kind: 'inline', data: 'inline', codec: 'inline_codec', dict: 'inline_dict' },
];

export async function runCompact(ctx: DictionaryDeps, opts: CompactOptions): Promise<{ report: CompactReport; dictionary: { id: number; data: Buffer } | null }> {
  const db = ctx.db;
  const clock = opts.now ?? Date.now;
  const pages = () => (db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number);
  const pagesBefore = pages();
  const rep: CompactReport = { dictionary: null, inlineDictionary: null, trained: false, messages: 0, rewritten: 0, bytesBefore: 0, bytesAfter: 0, inlineRewritten: 0, inlineBytesBefore: 0, inlineBytesAfter: 0, pagesFreed: 0 };
  const cutoff = clock() - opts.olderThanMs;
  const total = (db.prepare('SELECT count(*) AS n FROM messages WHERE received <= ?').get(cutoff) as { n: number }).n;
  rep.messages = total;
  let headerDict: { id: number; data: Buffer } | null = null;

  for (const t of TARGETS) {
    // 1. the dictionary: trained on samples from across the store; kept only if it beats the newest of its kind on them
    const newest = db.prepare(`SELECT id, data FROM dictionaries WHERE kind = ? ORDER BY id DESC LIMIT 1`).get(t.kind) as { id: number; data: Buffer } | undefined;
    let dict = newest ?? null;
    const samples = t.kind === 'header' ? sampleHeaderBlocks(ctx) : sampleInlineBodies(ctx);
    const fresh = trainDictionary(samples.filter((_, i) => i % 2 === 0 || t.kind === 'header'));
    if (fresh.length >= 1024) {
      const probe = samples.filter((_, i) => i % 2 === 1).slice(0, 2000);
      const base = dict ? sampleCost(probe, dict.data) : probe.reduce((a, b) => a + (b.length < 64 ? b.length : zlib.deflateRawSync(b, { level: LEVEL }).length), 0);
      if (sampleCost(probe, fresh) < base * 0.98) {
        dict = await ctx.writeLock.run(() => immediate(db, () => addDictionary(ctx, fresh, { sample: samples.length, by: 'compact' }, t.kind)));
        if (t.kind === 'header') rep.trained = true;
      }
    }
    if (t.kind === 'header') {
      headerDict = dict;
      rep.dictionary = dict?.id ?? null;
    } else rep.inlineDictionary = dict?.id ?? null;
    if (!dict) continue;
    const d = dict;

    // 2. the rows, a batch at a time (reads outside the write lock; each batch applied in one short transaction)
    // rows with compressed columns over ROW_MAX_BYTES (rare: huge header blocks) are left as they are: a batch stays bounded in memory
    const page = db.prepare(`SELECT id, ${t.data} AS data, ${t.codec} AS codec, ${t.dict} AS dict FROM messages WHERE id > ? AND received <= ? AND length(${t.data}) <= ${ROW_MAX_BYTES} ORDER BY id LIMIT ?`);
    const set = db.prepare(`UPDATE messages SET ${t.data} = ?, ${t.codec} = ?, ${t.dict} = ? WHERE id = ? AND ${t.data} = ?`);
    let after = 0;
    let seen = 0;
    for (;;) {
      const rows = page.all(after, cutoff, BATCH) as { id: number; data: Buffer | null; codec: number; dict: number | null }[];
      if (!rows.length) break;
      after = rows[rows.length - 1].id;
      seen += rows.length;
      const updates: { id: number; old: Buffer; data: Buffer; codec: number; dict: number | null }[] = [];
      for (const r of rows) {
        if (!r.data || r.dict === d.id) continue;
        let raw: Buffer;
        try {
          raw = unpackLayout(r.data, r.codec, r.dict != null ? ctx.dictionary(r.dict) : null);
        } catch {
          continue; // an undecodable row is check's business
        }
        const p = packLayout(raw, d.data, LEVEL);
        if (p.data.length > r.data.length * 0.99) continue;
        // what is written decodes to exactly what was there
        if (!unpackLayout(p.data, p.codec, p.codec === LayoutCodec.DeflateDict ? d.data : null).equals(raw)) continue;
        updates.push({ id: r.id, old: r.data, data: p.data, codec: p.codec, dict: p.codec === LayoutCodec.DeflateDict ? d.id : null });
      }
      if (updates.length) {
        await ctx.writeLock.run(() =>
          immediate(db, () => {
            for (const u of updates) {
              if (!set.run(u.data, u.codec, u.dict, u.id, u.old).changes) continue; // changed or expunged meanwhile
              if (t.kind === 'header') {
                rep.rewritten++;
                rep.bytesBefore += u.old.length;
                rep.bytesAfter += u.data.length;
              } else {
                rep.inlineRewritten++;
                rep.inlineBytesBefore += u.old.length;
                rep.inlineBytesAfter += u.data.length;
              }
            }
          }),
        );
        crashPoint('compact-written');
      }
      opts.progress?.(seen + (t.kind === 'inline' ? total : 0), 2 * total);
      await new Promise((r) => setImmediate(r)); // a long-running server keeps serving between batches
    }
  }
  if (opts.vacuum) {
    await ctx.writeLock.run(() => db.exec('VACUUM'));
    db.pragma('wal_checkpoint(TRUNCATE)');
  }
  rep.pagesFreed = Math.max(0, pagesBefore - pages());
  return { report: rep, dictionary: headerDict };
}
