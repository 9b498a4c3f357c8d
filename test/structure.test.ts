// The shape of src/, held as tests over its own imports and definitions, so that it stays what the
// README's source layout says: no import cycle between rooms (top-level folders of src, and the
// files directly in it) nor between files; SQL only in the rooms that own the tables (blob-index:
// blobs, packs, leases, markers; meta: messages, parts, dictionaries, counters, settings); no file
// over 400 lines, no function over 120.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

const SRC = path.join(ROOT, 'src');
const files = (fs.readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => path.join(SRC, f));
const rel = (f: string): string => path.relative(SRC, f);
const roomOf = (f: string): string => {
  const r = rel(f).split(path.sep);
  return r.length > 1 ? r[0] : r[0].replace(/\.ts$/, '');
};

/** Every relative import of each file (static, re-export, dynamic), resolved to a file of src. */
function imports(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    const deps = new Set<string>();
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
      const target = path.resolve(path.dirname(f), m[1] ?? m[2]).replace(/\.js$/, '.ts');
      if (fs.existsSync(target)) deps.add(target);
    }
    out.set(f, deps);
  }
  return out;
}

/** Strongly connected components of more than one node (Tarjan). */
function cycles(nodes: string[], next: (n: string) => Iterable<string>): string[][] {
  let index = 0;
  const ix = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    ix.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of next(v)) {
      if (!ix.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, ix.get(w)!));
    }
    if (low.get(v) === ix.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) found.push(c.sort());
    }
  };
  for (const n of nodes) if (!ix.has(n)) visit(n);
  return found;
}

describe('the shape of src/', () => {
  const graph = imports();

  it('no import cycle between rooms, nor between files', () => {
    const rooms = new Map<string, Set<string>>();
    for (const [f, deps] of graph) for (const d of deps) if (roomOf(f) !== roomOf(d)) rooms.set(roomOf(f), (rooms.get(roomOf(f)) ?? new Set()).add(roomOf(d)));
    expect(cycles([...new Set(files.map(roomOf))], (r) => rooms.get(r) ?? [])).toEqual([]);
    expect(cycles(files, (f) => graph.get(f) ?? []).map((c) => c.map(rel))).toEqual([]);
  });

  it('SQL only in the rooms that own the tables (blob-index, meta)', () => {
    const sql = /\.prepare\(\s*[`'"]|\.exec\(\s*[`'"]\s*(BEGIN|COMMIT|ROLLBACK|CREATE|ALTER|DELETE|INSERT|UPDATE|VACUUM)|\.pragma\(/;
    const outside = files.filter((f) => !['blob-index', 'meta'].includes(roomOf(f)) && sql.test(fs.readFileSync(f, 'utf8'))).map(rel);
    expect(outside).toEqual([]);
  });

  it('no file over 400 lines, no function over 120', () => {
    const long: string[] = [];
    const longFns: string[] = [];
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      const lines = text.split('\n').length;
      if (lines > 400) long.push(`${rel(f)} ${lines}`);
      const sf = ts.createSourceFile(f, text, ts.ScriptTarget.ES2022, true);
      const visit = (n: ts.Node): void => {
        if (ts.isFunctionLike(n) && 'body' in n && n.body) {
          const a = sf.getLineAndCharacterOfPosition(n.getStart()).line;
          const b = sf.getLineAndCharacterOfPosition(n.end).line;
          if (b - a + 1 > 120) longFns.push(`${rel(f)}:${a + 1} ${b - a + 1} lines`);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(long).toEqual([]);
    expect(longFns).toEqual([]);
  });

  it('the checks have teeth: a cycle, SQL out of place and an oversized function are found', () => {
    expect(cycles(['a', 'b', 'c'], (n) => ({ a: ['b'], b: ['c'], c: ['a'] })[n] ?? [])).toEqual([['a', 'b', 'c']]);
    const src = `function f() {\n${'  x();\n'.repeat(130)}}\n`;
    const sf = ts.createSourceFile('x.ts', src, ts.ScriptTarget.ES2022, true);
    const fn = sf.statements[0] as ts.FunctionDeclaration;
    expect(sf.getLineAndCharacterOfPosition(fn.end).line - sf.getLineAndCharacterOfPosition(fn.getStart()).line + 1).toBeGreaterThan(120);
    expect(/\.prepare\(\s*[`'"]/.test("db.prepare('SELECT 1 FROM messages')")).toBe(true);
  });
});
