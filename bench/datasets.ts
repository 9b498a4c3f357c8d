import fs from 'node:fs';
import path from 'node:path';
import { writeMaildirs } from '../corpus/generator/generate.js';

export interface Dataset {
  name: string;
  /** Message files, grouped by user. */
  users: { user: string; files: string[] }[];
  messages: number;
  bytes: number;
}

export const OUT = path.join(path.dirname(new URL(import.meta.url).pathname), 'out');

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'generator' && e.name !== 'tmp') walk(p);
      } else if (e.isFile() && !/^(SOURCES\.md|INDEX\.tsv)$/.test(e.name) && !/\.(ts|js)$/.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function dataset(name: string, byUser: Map<string, string[]>): Dataset {
  const users = [...byUser].map(([user, files]) => ({ user, files }));
  let bytes = 0;
  let messages = 0;
  for (const u of users) for (const f of u.files) {
    bytes += fs.statSync(f).size;
    messages++;
  }
  return { name, users, messages, bytes };
}

export function corpusDataset(root: string): Dataset {
  return dataset('corpus (real mail)', new Map([['corpus', filesUnder(root)]]));
}

/** Generated Maildirs, cached under bench/out by parameters. */
export function generatedDataset(name: string, o: { seed: number; users: number; messages: number; profile: 'mixed' | 'attachments' | 'small' }): Dataset {
  const dir = path.join(OUT, `gen-${o.profile}-${o.seed}-${o.users}-${o.messages}`);
  if (!fs.existsSync(path.join(dir, '.done'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    writeMaildirs(dir, o);
    fs.writeFileSync(path.join(dir, '.done'), '');
  }
  const byUser = new Map<string, string[]>();
  for (const u of fs.readdirSync(dir)) {
    if (u.startsWith('.')) continue;
    byUser.set(`${u}@example.org`, filesUnder(path.join(dir, u)));
  }
  return dataset(name, byUser);
}
