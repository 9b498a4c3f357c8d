import type { Db, WriteLock } from './db.js';
import type { Logger } from '../util/logger.js';

/** What dictionary training and sampling use of a store: its database, its dictionaries, its log and write lock. */
export interface DictionaryDeps {
  db: Db;
  log: Logger;
  writeLock: WriteLock;
  dictionary(id: number): Buffer | null;
}
import { unpackMessageLayout, type LayoutColumns } from '../layout/packed-layout.js';
import { unpackLayout } from '../layout/layout-codec.js';

/** zlib's window: a preset dictionary longer than this is not used. */
const DICT_BYTES = 32 * 1024;
/** How many recent messages the dictionary is trained on. */
const SAMPLE = 1000;

/**
 * Builds a preset deflate dictionary from the store's own header blocks:
 * the lines (and line prefixes) that recur across messages, most valuable
 * last (deflate reaches the end of the dictionary most cheaply).
 */
export function trainDictionary(headerBlocks: Buffer[]): Buffer {
  const seen = new Map<string, number>();
  for (const block of headerBlocks) {
    const mine = new Set<string>();
    for (const line of block.toString('latin1').split(/(?<=\n)/)) {
      if (line.length < 4) continue;
      mine.add(line);
      // prefixes: the field name, and the text up to the first run of digits (dates, ids and hosts vary)
      const colon = line.indexOf(':');
      if (colon > 0 && colon < 40) mine.add(line.slice(0, colon + 2));
      const m = /^[^0-9]{12,}/.exec(line);
      if (m && m[0].length < line.length) mine.add(m[0]);
    }
    for (const k of mine) seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const scored = [...seen]
    .filter(([, n]) => n >= 3)
    .map(([k, n]) => ({ k, score: (n - 1) * k.length }))
    .sort((a, b) => b.score - a.score);
  const picked: string[] = [];
  let size = 0;
  for (const { k } of scored) {
    if (size + k.length > DICT_BYTES) continue;
    picked.push(k);
    size += k.length;
    if (size >= DICT_BYTES - 16) break;
  }
  return Buffer.from(picked.reverse().join(''), 'latin1');
}

/** Picks up to SAMPLE messages spread evenly over the store's ids (with a row matching `filter`), handing each to take() until it returns false. */
function spreadRows<T>(db: Db, columns: string, filter: string, take: (row: T) => boolean): void {
  const { lo, hi } = db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM messages').get() as { lo: number | null; hi: number | null };
  if (lo === null || hi === null) return;
  const pick = db.prepare(`SELECT ${columns} FROM messages WHERE id >= ? ${filter} ORDER BY id LIMIT 1`);
  const step = Math.max(1, (hi - lo + 1) / SAMPLE);
  for (let id = lo; id <= hi; id += step) {
    const r = pick.get(Math.floor(id)) as T | undefined;
    if (!r || !take(r)) return;
  }
}

/** Header blocks sampled evenly across the whole store (up to SAMPLE messages). */
export function sampleHeaderBlocks(ctx: Pick<DictionaryDeps, 'db' | 'dictionary'>): Buffer[] {
  const blocks: Buffer[] = [];
  spreadRows<LayoutColumns>(ctx.db, 'layout, codec, dict, inline, inline_codec, inline_dict', '', (r) => {
    try {
      for (const s of unpackMessageLayout(r, (d) => ctx.dictionary(d), true).segments) if (s.k === 'header') blocks.push(s.bytes);
    } catch {
      /* an undecodable row is check's business, not ours */
    }
    return blocks.length < SAMPLE * 4;
  });
  return blocks;
}

export type DictionaryKind = 'header' | 'inline';

/** Inline bodies (decompressed) sampled evenly across the store, up to `max` bytes. */
export function sampleInlineBodies(ctx: Pick<DictionaryDeps, 'db' | 'dictionary'>, max = 4 * 1024 * 1024): Buffer[] {
  const out: Buffer[] = [];
  let n = 0;
  spreadRows<{ inline: Buffer; inline_codec: number; inline_dict: number | null }>(ctx.db, 'inline, inline_codec, inline_dict', 'AND inline IS NOT NULL', (r) => {
    try {
      const b = unpackLayout(r.inline, r.inline_codec, r.inline_dict != null ? ctx.dictionary(r.inline_dict) : null);
      out.push(b);
      n += b.length;
    } catch {
      /* check's business */
    }
    return n < max;
  });
  return out;
}

/** Records a new dictionary (new layouts use the newest header dictionary); returns it. */
export function addDictionary(ctx: Pick<DictionaryDeps, 'db' | 'log'>, data: Buffer, why: Record<string, unknown>, kind: DictionaryKind = 'header'): { id: number; data: Buffer } {
  const id = Number(ctx.db.prepare('INSERT INTO dictionaries(data, created, kind) VALUES (?, ?, ?)').run(data, Date.now(), kind).lastInsertRowid);
  ctx.log.info('dictionary-trained', { id, kind, bytes: data.length, ...why });
  return { id, data };
}

/**
 * Trains a header dictionary when the store reaches `after` messages, and
 * again at 4x, 16x, ... that count, each time on a sample spread over the
 * whole store (so the dictionary follows the mail the store actually holds).
 * Layouts keep the dictionary they were written with; all stay readable.
 */
export async function maybeTrainDictionary(ctx: DictionaryDeps, after: number): Promise<{ id: number; data: Buffer } | null> {
  const db = ctx.db;
  const k = (db.prepare("SELECT count(*) AS n FROM dictionaries WHERE kind = 'header'").get() as { n: number }).n;
  // min/max are index lookups; count(*) would scan a large table on every check
  const { lo, hi } = db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM messages').get() as { lo: number | null; hi: number | null };
  if (lo === null || hi === null) return null;
  const n = hi - lo + 1;
  if (n < after * 4 ** k) return null;
  const blocks = sampleHeaderBlocks(ctx);
  const data = trainDictionary(blocks);
  if (data.length < 1024) return null;
  return ctx.writeLock.run(() => {
    const now = (db.prepare("SELECT count(*) AS n FROM dictionaries WHERE kind = 'header'").get() as { n: number }).n;
    if (now !== k) return db.prepare("SELECT id, data FROM dictionaries WHERE kind = 'header' ORDER BY id DESC LIMIT 1").get() as { id: number; data: Buffer };
    return addDictionary(ctx, data, { sample: blocks.length, messages: n });
  });
}

/** A preset dictionary by id, or null. */
export function dictionaryById(db: Db, id: number): Buffer | null {
  return (db.prepare('SELECT data FROM dictionaries WHERE id = ?').get(id) as { data: Buffer } | undefined)?.data ?? null;
}

/** The dictionary new header blocks are compressed with (the newest trained), or null. */
export function currentDictionary(db: Db): { id: number; data: Buffer } | null {
  return (db.prepare("SELECT id, data FROM dictionaries WHERE kind = 'header' ORDER BY id DESC LIMIT 1").get() as { id: number; data: Buffer } | undefined) ?? null;
}
