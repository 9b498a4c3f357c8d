// mailcas's answers to FETCH next to Dovecot's IMAP on the same messages, over the whole dev corpus:
// RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, and the bytes of BODY[], BODY[HEADER], BODY[TEXT] and
// of every part (BODY[n], BODY[n.MIME], partials). Messages are compared CRLF throughout (Dovecot
// gives back CRLF whatever a file holds); messages with bare CR are left out (counted).
// The messages where mailcas differs on purpose are listed in oracle-differences.json with the
// reason; any other difference fails the test. MAILCAS_ORACLE_RECORD=1 rewrites the list.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { bodyStructure, envelope, parseSection, resolveSection } from '../../src/fetch/structure.js';
import { filterFields, parseFields } from '../../src/fetch/header.js';
import type { TreeNode } from '../../src/split/mime-tree.js';
import { DovecotOracle, oracleAvailable } from './dovecot-oracle.js';
import { ROOT, corpusFiles, tmpDir } from '../helpers.js';

const LIST = path.join(ROOT, 'test', 'imap', 'oracle-differences.json');
interface Known {
  /** why mailcas differs, by kind */
  reasons: Record<string, string>;
  /** corpus-relative file -> the items that differ on purpose, and why */
  messages: Record<string, { differs: string[]; why: string }>;
}
/** The one kind of difference where section bytes may differ: Dovecot does not give back the bytes it was given. */
const BYTES_DIFFER = new Set(['nul-bytes']);

const crlf = (b: Buffer): Buffer | null => {
  const s = b.toString('latin1');
  if (/\r(?!\n)/.test(s)) return null;
  return Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
};

/** IMAP part numbers of every part of a tree (the numbers section fetches use). */
function partNumbers(root: TreeNode): string[] {
  const out: string[] = [];
  const walk = (n: TreeNode, prefix: string, top: boolean): void => {
    const holder = n.kind === 'message' && !top ? n.children[0] : n;
    if (!holder) return;
    const kids = holder.kind === 'multipart' ? holder.children : [holder];
    kids.forEach((c, i) => {
      const num = prefix ? `${prefix}.${i + 1}` : String(i + 1);
      out.push(num);
      if (c.kind === 'multipart' || (c.kind === 'message' && c !== holder)) walk(c, num, false);
    });
  };
  walk(root, '', true);
  return out.slice(0, 40);
}

describe.runIf(oracleAvailable)('FETCH answers next to Dovecot 2.3 IMAP (oracle) over the dev corpus', () => {
  it('sizes, envelopes, structures and section bytes agree, except where listed with a reason', async () => {
    const files = corpusFiles();
    const rel = (f: string) => path.relative(path.join(ROOT, 'corpus'), f);
    const kept = files.map((f) => ({ f, b: crlf(fs.readFileSync(f)) })).filter((x): x is { f: string; b: Buffer } => !!x.b);
    const s = await Store.open(tmpDir(), { logger: silentLogger, workers: 0 });
    const ids: string[] = [];
    for (const k of kept) ids.push((await s.ingest(k.b, { user: 'u' })).id);
    const oracle = new DovecotOracle(kept.map((k) => k.b));
    const meta = oracle.fetch(['FETCH 1:* (RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)']);
    const found: Record<string, string[]> = {};
    const note = (f: string, what: string): void => void (found[rel(f)] ??= []).push(what);
    const sectionCommands: string[] = [];
    const expected: { seq: number; key: string; bytes: Buffer }[] = [];
    for (let i = 0; i < kept.length; i++) {
      const d = meta.get(i + 1)!;
      const m = s.access(ids[i]);
      const tree = await m.tree();
      const src = { header: (a: number, b: number) => m.buffer(a, b) };
      expect(m.size, kept[i].f).toBe(d.get('RFC822.SIZE'));
      const env = await envelope(parseFields(await m.buffer(tree.headerStart, tree.bodyStart)));
      if (JSON.stringify(env) !== JSON.stringify(d.get('ENVELOPE'))) note(kept[i].f, 'ENVELOPE');
      const body = await bodyStructure(tree, src, false);
      const structureAgrees = JSON.stringify(body) === JSON.stringify(d.get('BODY'));
      if (!structureAgrees) note(kept[i].f, 'BODY');
      if (JSON.stringify(await bodyStructure(tree, src, true)) !== JSON.stringify(d.get('BODYSTRUCTURE'))) note(kept[i].f, 'BODYSTRUCTURE');
      // section bytes: the message's, and every part's where both see the same parts
      const specs = ['', 'HEADER', 'TEXT', 'HEADER.FIELDS (FROM SUBJECT DATE)', ...(structureAgrees ? partNumbers(tree).flatMap((n) => [n, `${n}.MIME`]) : [])];
      const items: string[] = [];
      for (const spec of specs) {
        const t = resolveSection(tree, m.size, parseSection(spec)!);
        if (!t) continue;
        const bytes = t.kind === 'range' ? await m.buffer(t.start, t.end) : filterFields(await m.buffer(t.start, t.end), t.names, t.not);
        expected.push({ seq: i + 1, key: `BODY[${spec}]`, bytes });
        items.push(`BODY.PEEK[${spec}]`);
        if (spec === '' && m.size > 100) {
          expected.push({ seq: i + 1, key: 'BODY[]<17>', bytes: bytes.subarray(17, 117) });
          items.push('BODY.PEEK[]<17.100>');
        }
      }
      sectionCommands.push(`FETCH ${i + 1} (${items.join(' ')})`);
    }
    const sections = oracle.fetch(sectionCommands);
    let compared = 0;
    for (const e of expected) {
      const got = sections.get(e.seq)?.get(e.key);
      const theirs = typeof got === 'string' ? Buffer.from(got, 'latin1') : got === null ? Buffer.alloc(0) : null;
      expect(theirs, `${rel(kept[e.seq - 1].f)} ${e.key}`).not.toBeNull();
      if (!theirs!.equals(e.bytes)) note(kept[e.seq - 1].f, e.key);
      compared++;
    }
    await s.close();
    console.log(`oracle: ${kept.length} messages (${files.length - kept.length} with bare CR left out), ${compared} section fetches compared; differing on purpose: ${Object.keys(found).length} messages`);
    if (process.env.MAILCAS_ORACLE_RECORD) {
      // keeps the reasons given; a new message gets why "?" until someone gives one
      const old: Known = fs.existsSync(LIST) ? JSON.parse(fs.readFileSync(LIST, 'utf8')) : { messages: {}, reasons: {} };
      const messages = Object.fromEntries(Object.entries(found).sort().map(([f, differs]) => [f, { differs, why: old.messages[f]?.why ?? '?' }]));
      fs.writeFileSync(LIST, JSON.stringify({ reasons: old.reasons, messages }, null, 1) + '\n');
    }
    const known: Known = JSON.parse(fs.readFileSync(LIST, 'utf8'));
    const unexpected = Object.entries(found).flatMap(([f, ws]) => ws.filter((w) => !(known.messages[f]?.differs ?? []).includes(w)).map((w) => `${f} ${w}`));
    expect(unexpected).toEqual([]);
    // every listed difference has a stated reason, and the list holds nothing that no longer differs
    expect(Object.entries(known.messages).filter(([, k]) => !known.reasons[k.why]).map(([f]) => f)).toEqual([]);
    expect(Object.keys(known.messages).filter((f) => !found[f])).toEqual([]);
    // section bytes agree wherever both see the same structure, except where Dovecot alters the bytes
    expect(Object.entries(found).filter(([f, ws]) => ws.some((w) => w.startsWith('BODY[')) && !BYTES_DIFFER.has(known.messages[f]?.why)).map(([f]) => f)).toEqual([]);
  });
});
