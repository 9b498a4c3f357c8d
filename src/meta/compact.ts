/**
 * Compaction of older mail's metadata: header blocks recompressed with a
 * dictionary trained on the whole store as it is now, at deflate's highest
 * level. The log-structured counterpart of cold packs: new mail is written
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
import type { StoreContext } from '../store-context.js';
import { LayoutCodec, packLayout, unpackLayout } from '../layout/layout-codec.js';
import { addDictionary, sampleHeaderBlocks, trainDictionary } from './dictionary.js';
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
  /** The dictionary rewritten layouts use, and whether this run trained it. */
  dictionary: number | null;
  trained: boolean;
  /** Messages looked at, and those rewritten (smaller by at least 1%). */
  messages: number;
  rewritten: number;
  /** Compressed header bytes of the rewritten messages, before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** Database pages freed (reused by new mail; with vacuum, given back to the filesystem). */
  pagesFreed: number;
}

const LEVEL = 9;
const BATCH = 500;

/** The compressed size of the sample's layouts with a dictionary. */
function sampleCost(heads: Buffer[], dict: Buffer): number {
  let n = 0;
  for (const h of heads) n += h.length < 64 ? h.length : zlib.deflateRawSync(h, { level: LEVEL, dictionary: dict }).length;
  return n;
}

export async function runCompact(ctx: StoreContext, opts: CompactOptions): Promise<{ report: CompactReport; dictionary: { id: number; data: Buffer } | null }> {
  const db = ctx.db;
  const clock = opts.now ?? Date.now;
  const pages = () => (db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number);
  const pagesBefore = pages();
  const rep: CompactReport = { dictionary: null, trained: false, messages: 0, rewritten: 0, bytesBefore: 0, bytesAfter: 0, pagesFreed: 0 };

  // 1. the dictionary: trained on header blocks from across the store; kept only if it beats the newest one on them
  let dict = ctx.currentDictionary();
  const blocks = sampleHeaderBlocks(ctx);
  const fresh = trainDictionary(blocks);
  if (fresh.length >= 1024) {
    const probe = blocks.filter((_, i) => i % 2 === 1).slice(0, 2000);
    if (!dict || sampleCost(probe, fresh) < sampleCost(probe, dict.data) * 0.98) {
      const data = fresh;
      dict = await ctx.writeLock.run(() => immediate(db, () => addDictionary(ctx, data, { sample: blocks.length, by: 'compact' })));
      rep.trained = true;
    }
  }
  if (!dict) return { report: rep, dictionary: null };
  rep.dictionary = dict.id;

  // 2. the rows, a batch at a time (reads outside the write lock; each batch applied in one short transaction)
  const cutoff = clock() - opts.olderThanMs;
  const total = (db.prepare('SELECT count(*) AS n FROM messages WHERE received <= ?').get(cutoff) as { n: number }).n;
  const page = db.prepare('SELECT id, layout, codec, dict FROM messages WHERE id > ? AND received <= ? ORDER BY id LIMIT ?');
  const set = db.prepare('UPDATE messages SET layout = ?, codec = ?, dict = ? WHERE id = ? AND layout = ?');
  let after = 0;
  for (;;) {
    const rows = page.all(after, cutoff, BATCH) as { id: number; layout: Buffer; codec: number; dict: number | null }[];
    if (!rows.length) break;
    after = rows[rows.length - 1].id;
    const updates: { id: number; old: Buffer; data: Buffer; codec: number; dict: number | null }[] = [];
    for (const r of rows) {
      rep.messages++;
      if (r.dict === dict.id) continue;
      let raw: Buffer;
      try {
        raw = unpackLayout(r.layout, r.codec, r.dict != null ? ctx.dictionary(r.dict) : null);
      } catch {
        continue; // an undecodable row is check's business
      }
      const p = packLayout(raw, dict.data, LEVEL);
      if (p.data.length > r.layout.length * 0.99) continue;
      // what is written decodes to exactly what was there
      if (!unpackLayout(p.data, p.codec, p.codec === LayoutCodec.DeflateDict ? dict.data : null).equals(raw)) continue;
      updates.push({ id: r.id, old: r.layout, data: p.data, codec: p.codec, dict: p.codec === LayoutCodec.DeflateDict ? dict.id : null });
    }
    if (updates.length) {
      await ctx.writeLock.run(() =>
        immediate(db, () => {
          for (const u of updates) {
            if (set.run(u.data, u.codec, u.dict, u.id, u.old).changes) {
              rep.rewritten++;
              rep.bytesBefore += u.old.length;
              rep.bytesAfter += u.data.length;
            }
          }
        }),
      );
      crashPoint('compact-written');
    }
    opts.progress?.(rep.messages, total);
    await new Promise((r) => setImmediate(r)); // a long-running server keeps serving between batches
  }
  if (opts.vacuum) {
    await ctx.writeLock.run(() => db.exec('VACUUM'));
    db.pragma('wal_checkpoint(TRUNCATE)');
  }
  rep.pagesFreed = Math.max(0, pagesBefore - pages());
  return { report: rep, dictionary: dict };
}
