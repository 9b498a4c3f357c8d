import type { Database as Db } from 'better-sqlite3';
import { unpackLayout } from '../layout/layout-codec.js';
import { layoutSum } from '../layout/layout-sum.js';

const BATCH = 1000;

/**
 * The upgrade to schema 6: the layout checksum of every message stored
 * before it (inside the upgrade's transaction). A row whose layout cannot be
 * decoded keeps none: check reports it as damaged, as before.
 */
export function computeMissingLayoutSums(db: Db): number {
  const dicts = new Map<number, Buffer | null>();
  const dictionary = (id: number | null): Buffer | null => {
    if (id == null) return null;
    if (!dicts.has(id)) dicts.set(id, (db.prepare('SELECT data FROM dictionaries WHERE id = ?').get(id) as { data: Buffer } | undefined)?.data ?? null);
    return dicts.get(id)!;
  };
  const page = db.prepare('SELECT id, codec, dict, layout, inline, inline_codec, inline_dict, tree FROM messages WHERE id > ? AND layout_sum IS NULL ORDER BY id LIMIT ?');
  const set = db.prepare('UPDATE messages SET layout_sum = ? WHERE id = ?');
  type Row = { id: number; codec: number; dict: number | null; layout: Buffer; inline: Buffer | null; inline_codec: number; inline_dict: number | null; tree: Buffer | null };
  let after = 0;
  let n = 0;
  for (;;) {
    const rows = page.all(after, BATCH) as Row[];
    if (!rows.length) return n;
    for (const r of rows) {
      after = r.id;
      let head: Buffer;
      let inline: Buffer | null;
      try {
        head = unpackLayout(r.layout, r.codec, dictionary(r.dict));
        inline = r.inline ? unpackLayout(r.inline, r.inline_codec, dictionary(r.inline_dict)) : null;
      } catch {
        continue;
      }
      set.run(layoutSum(head, inline?.length ? inline : null, r.tree), r.id);
      n++;
    }
  }
}
