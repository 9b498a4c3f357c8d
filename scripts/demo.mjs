#!/usr/bin/env node
// npm run demo: the bundled corpus into ./mailcas-data (or $MAILCAS_STORE), then the proof of the main
// promise: every message exported again and compared with its source file byte for byte, every blob
// re-hashed (check --deep), and the storage report. Run it twice: the second run stores nothing new.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = path.join(root, 'bin', 'mailcas.js');
const store = process.env.MAILCAS_STORE || path.join(process.cwd(), 'mailcas-data');
const user = 'demo';
// mail only: the corpus's message folders (its index, sources and the mailbox generator are not mail)
const corpus = path.join(root, 'corpus');
const folders = fs
  .readdirSync(corpus, { withFileTypes: true })
  .filter((e) => e.isDirectory() && e.name !== 'generator')
  .map((e) => path.join(corpus, e.name))
  .sort();

const mailcas = (args, opts = {}) => {
  const r = spawnSync(process.execPath, [bin, '--store', store, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', opts.quiet ? 'pipe' : 'inherit'] });
  if (r.status !== 0 && !opts.ok?.includes(r.status)) {
    process.stderr.write(`demo: mailcas ${args[0]} exited ${r.status}\n${r.stderr ?? ''}`);
    process.exit(1);
  }
  return r.stdout;
};

console.log(`importing ${folders.length} folders of real mail (${folders.map((f) => path.basename(f)).join(', ')}) into ${store}`);
// --skip-existing: a second run finds every message there already and stores nothing
const lines = mailcas(['import', '--user', user, '--json', '--skip-existing', ...folders])
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
const summary = lines.pop().summary;
console.log(`imported ${summary.messages} messages (${(summary.bytes / 1e6).toFixed(1)} MB); ${summary.skipped} already there; ${summary.failed} failed`);

// the round trip: every message out again, compared with the file it came from
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-demo-'));
mailcas(['export', '--user', user, '--out', out], { quiet: true });
let same = 0;
let differ = 0;
for (const l of lines) {
  if (!l.id) continue;
  if (fs.readFileSync(path.join(out, `${l.id}.eml`)).equals(fs.readFileSync(l.source))) same++;
  else differ++;
}
fs.rmSync(out, { recursive: true, force: true });
console.log(`round trip: ${same} of ${same + differ} messages exported byte-identical to their source files${differ ? `; ${differ} DIFFER` : ''}`);
console.log(mailcas(['check', '--deep']).trimEnd());
console.log('');
console.log(mailcas(['report']).trimEnd());
if (differ) process.exit(1);
