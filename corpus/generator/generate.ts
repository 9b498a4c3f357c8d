/**
 * Writes generated mailboxes as Maildirs: OUT/<user>/{cur,new,tmp} and OUT/<user>/.Sent/...
 *   npx tsx corpus/generator/generate.ts --out /tmp/mail --seed 1 --users 20 --messages 2000 [--profile mixed|attachments|small]
 */
import fs from 'node:fs';
import path from 'node:path';
import { generateMailboxes, type Profile } from './mailbox-generator.js';

export function writeMaildirs(out: string, o: { seed: number; users: number; messages: number; profile: Profile }): { messages: number; bytes: number } {
  let messages = 0;
  let bytes = 0;
  for (const m of generateMailboxes(o)) {
    const box = path.join(out, m.user.split('@')[0], m.mailbox === 'INBOX' ? '' : `.${m.mailbox}`);
    for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(box, d), { recursive: true });
    fs.writeFileSync(path.join(box, 'cur', m.name), m.bytes);
    messages++;
    bytes += m.bytes.length;
  }
  return { messages, bytes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (k: string, d: string): string => {
    const i = process.argv.indexOf(`--${k}`);
    return i >= 0 ? process.argv[i + 1] : d;
  };
  const r = writeMaildirs(arg('out', './generated-mail'), {
    seed: Number(arg('seed', '1')),
    users: Number(arg('users', '20')),
    messages: Number(arg('messages', '1000')),
    profile: arg('profile', 'mixed') as Profile,
  });
  console.log(`wrote ${r.messages} messages (${(r.bytes / 1e6).toFixed(1)} MB)`);
}
