import { isMailcasError } from '../../errors.js';
import type { Store } from '../../store.js';
import { parseFields, type RawField } from '../../fetch/header.js';
import type { Arg } from '../command-parser.js';
import { parseSearch, type SearchFacts } from '../search.js';
import { Fatal, type SessionState } from '../session-state.js';

// SEARCH and UID SEARCH over the selected mailbox (from the metadata; header keys read header blocks only)

export async function search(s: SessionState, args: Arg[], uid: boolean): Promise<void> {
  const sel = s.selected!;
  const crit = parseSearch(args, { seq: sel.uids.length, uid: sel.uids[sel.uids.length - 1] ?? 0 });
  const hits: number[] = [];
  for (let i = 0; i < sel.uids.length; i++) {
    if (s.gone) throw new Fatal('the connection closed during SEARCH');
    const id = String(sel.uids[i]);
    let rec: ReturnType<Store['get']>;
    try {
      rec = s.store.get(id, { user: s.user! });
    } catch (e) {
      if (isMailcasError(e, 'E_NOT_FOUND')) continue;
      throw e;
    }
    let fields: RawField[] | null = null;
    const facts: SearchFacts = {
      seq: i + 1,
      uid: sel.uids[i],
      size: rec.size,
      received: rec.received,
      flags: sel.flags.get(sel.uids[i]) ?? [],
      modseq: sel.modseqs.get(sel.uids[i]) ?? 1,
      fields: async () => {
        if (fields) return fields;
        const m = s.store.access(id, { user: s.user! });
        const tree = await m.tree();
        return (fields = parseFields(await m.buffer(tree.headerStart, tree.bodyStart)));
      },
    };
    if (await crit(facts)) hits.push(uid ? sel.uids[i] : i + 1);
  }
  await s.io.write(`* SEARCH${hits.map((h) => ` ${h}`).join('')}\r\n`);
}