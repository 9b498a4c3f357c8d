import { runHostileFronts } from './hostile-fronts.js';
import fs from 'node:fs';
const dir = fs.mkdtempSync('/tmp/hf-');
const rep = await runHostileFronts({ bin: '/work/main/bin/mailcas.js', dir, shapeMs: Number(process.argv[2] ?? 3000), mailboxSize: Number(process.argv[3] ?? 2000), log: (s) => console.log(new Date().toISOString(), s) });
for (const s of rep.shapes) console.log(JSON.stringify(s));
console.log(JSON.stringify({ ...rep, shapes: undefined }));
