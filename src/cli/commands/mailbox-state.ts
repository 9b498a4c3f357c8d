import { Command } from 'commander';
import { MailcasError } from '../../errors.js';
import { nonNegativeInt, out, withStore } from '../command-kit.js';

/** Commands on mailbox state: flags, mailbox (create, rename, delete, list, subscribe), copy and move. */
export function registerMailboxStateCommands(program: Command): void {
  flagsCommand(program);
  mailboxCommand(program);
  copyCommand(program, 'copy');
  copyCommand(program, 'move');
}

function ids(args: string[]): number[] {
  return args.map((a) => {
    const n = Number(a);
    if (!Number.isSafeInteger(n) || n < 1) throw new MailcasError('E_USAGE', `a message id is a positive integer, got ${JSON.stringify(a)}`);
    return n;
  });
}

function flagsCommand(program: Command): void {
  program
    .command('flags')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas flags --user alice@example.org --mailbox INBOX 42 43 --add \'\\Seen\' Work\n  $ mailcas flags --user alice@example.org 42 --set \'\\Flagged\' --json\n\nSystem flags: \\Seen \\Answered \\Flagged \\Deleted \\Draft (the backslash may be left out); anything else is a keyword.',
    )
    .description("change messages' IMAP flags and keywords; each change takes its mailbox's next modseq")
    .requiredOption('--user <user>', 'owner of the messages (required)')
    .option('--mailbox <mailbox>', 'the messages must be in this mailbox')
    .option('--add <flag...>', 'add these flags')
    .option('--remove <flag...>', 'remove these flags')
    .option('--set <flag...>', 'replace the flags with these (--set with no flag clears them: use --set "")')
    .option('--unchanged-since <modseq>', 'leave alone messages changed after this modseq (CONDSTORE); they are listed as modified')
    .option('--json', 'one JSON object per message: id, flags, modseq, changed')
    .argument('<id...>', 'message ids')
    .action(async (args: string[], o: { user: string; mailbox?: string; add?: string[]; remove?: string[]; set?: string[]; unchangedSince?: string; json?: boolean }, cmd: Command) => {
      const ops = (['add', 'remove', 'set'] as const).filter((k) => o[k] !== undefined);
      if (ops.length !== 1) throw new MailcasError('E_USAGE', 'flags needs exactly one of --add, --remove, --set');
      const op = ops[0];
      const list = ids(args);
      await withStore(cmd, async (s) => {
        const since = o.unchangedSince === undefined ? undefined : nonNegativeInt(o.unchangedSince, '--unchanged-since');
        const r = await s.mail.setFlags(o.user, list, op, (o[op] ?? []).filter((f) => f !== ''), { mailbox: o.mailbox, unchangedSince: since });
        const changed = new Set(r.changed);
        for (const st of r.states) {
          if (o.json) out(JSON.stringify({ id: String(st.uid), flags: st.flags, modseq: st.modseq, changed: changed.has(st.uid) }));
          else out(`${st.uid}\t${st.flags.join(' ')}`);
        }
        for (const id of r.modified) {
          if (o.json) out(JSON.stringify({ id: String(id), modified: true }));
          process.stderr.write(`mailcas: message ${id} changed after modseq ${since}: left alone\n`);
        }
        if (r.missing.length) throw new MailcasError('E_NOT_FOUND', `no message ${r.missing.join(' ')} of ${o.user}${o.mailbox ? ` in ${o.mailbox}` : ''}`);
      });
    });
}

function mailboxCommand(program: Command): void {
  const mb = program
    .command('mailbox')
    .description("a user's mailboxes: list, create, rename, delete, subscribe, unsubscribe")
    .addHelpText('after', '\nExamples:\n  $ mailcas mailbox list --user alice@example.org\n  $ mailcas mailbox create --user alice@example.org Archive/2026\n  $ mailcas mailbox rename --user alice@example.org Archive Old');
  mb.command('list')
    .description('mailboxes with their messages, unseen, bytes, UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ')
    .requiredOption('--user <user>', 'owner (required)')
    .option('--json', 'one JSON object per mailbox: name, messages, unseen, bytes, subscribed, specialUse, uidValidity, uidNext, highestModseq')
    .action(async (o: { user: string; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        for (const m of s.mail.list(o.user)) {
          if (o.json) out(JSON.stringify({ name: m.name, messages: m.messages, unseen: m.unseen, bytes: m.bytes, subscribed: m.subscribed, specialUse: m.special, uidValidity: m.uidValidity, uidNext: m.uidNext, highestModseq: m.highestModseq }));
          else out(`${m.name}\t${m.messages}\t${m.unseen}\t${m.bytes}${m.subscribed ? '' : '\t(unsubscribed)'}`);
        }
      }, { readOnly: true });
    });
  const simple = (name: string, desc: string, run: (s: Parameters<Parameters<typeof withStore>[1]>[0], user: string, args: string[]) => Promise<Record<string, unknown>>, argSpec: string) =>
    mb
      .command(name)
      .description(desc)
      .requiredOption('--user <user>', 'owner (required)')
      .option('--json', 'one JSON object with what was done')
      .argument(argSpec)
      .action(async (...a: unknown[]) => {
        const cmd = a[a.length - 1] as Command;
        const o = a[a.length - 2] as { user: string; json?: boolean };
        const args = a.slice(0, -2) as string[];
        await withStore(cmd, async (s) => {
          const r = await run(s, o.user, args);
          if (o.json) out(JSON.stringify(r));
          else process.stderr.write(`${Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
        });
      });
  mb.command('create')
    .description('create an empty mailbox')
    .requiredOption('--user <user>', 'owner (required)')
    .option('--special-use <use>', 'RFC 6154 special use: \\Sent, \\Drafts, \\Trash, \\Junk, \\Archive, \\All, \\Flagged')
    .option('--subscribe', 'subscribe to it too')
    .option('--json', 'one JSON object with what was done')
    .argument('<name>')
    .action(async (n: string, o: { user: string; specialUse?: string; subscribe?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        await s.mail.create(o.user, n, { special: o.specialUse, subscribe: o.subscribe });
        if (o.json) out(JSON.stringify({ created: n }));
        else process.stderr.write(`created ${n}\n`);
      });
    });
  simple('delete', 'delete a mailbox and expunge its messages (gc reclaims their blobs)', async (s, u, [n]) => ({ deleted: n, expunged: await s.mail.delete(u, n) }), '<name>');
  simple('subscribe', 'subscribe to a mailbox (LSUB, LIST (SUBSCRIBED))', async (s, u, [n]) => (await s.mail.subscribe(u, n, true), { subscribed: n }), '<name>');
  simple('unsubscribe', 'unsubscribe from a mailbox', async (s, u, [n]) => (await s.mail.subscribe(u, n, false), { unsubscribed: n }), '<name>');
  mb.command('rename')
    .description('rename a mailbox and those below it; messages keep their UIDs (INBOX: its messages move, INBOX stays)')
    .requiredOption('--user <user>', 'owner (required)')
    .option('--json', 'one JSON object: from, to, messages')
    .argument('<from>')
    .argument('<to>')
    .action(async (from: string, to: string, o: { user: string; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const n = await s.mail.rename(o.user, from, to);
        if (o.json) out(JSON.stringify({ from, to, messages: n }));
        else process.stderr.write(`renamed ${from} to ${to} (${n} messages)\n`);
      });
    });
}

function copyCommand(program: Command, name: 'copy' | 'move'): void {
  program
    .command(name)
    .addHelpText('after', `\nExamples:\n  $ mailcas ${name} --user alice@example.org --mailbox INBOX --to Archive 42 43`)
    .description(
      name === 'copy'
        ? 'copy messages into another mailbox: a new row each referencing the same parts (no blob bytes written)'
        : 'move messages into another mailbox (new UIDs there; expunged where they were)',
    )
    .requiredOption('--user <user>', 'owner of the messages (required)')
    .option('--mailbox <mailbox>', 'the messages must be in this mailbox')
    .requiredOption('--to <mailbox>', 'target mailbox (it must exist: mailcas mailbox create)')
    .option('--json', 'one JSON object per message: id, newId, mailbox')
    .argument('<id...>', 'message ids')
    .action(async (args: string[], o: { user: string; mailbox?: string; to: string; json?: boolean }, cmd: Command) => {
      const list = ids(args);
      await withStore(cmd, async (s) => {
        const pairs = await s.mail.copy(o.user, list, o.to, { move: name === 'move', mailbox: o.mailbox });
        for (const p of pairs) out(o.json ? JSON.stringify({ id: String(p.from), newId: String(p.to), mailbox: o.to }) : `${p.from}\t${p.to}`);
        const done = new Set(pairs.map((p) => p.from));
        const missing = list.filter((i) => !done.has(i));
        if (missing.length) throw new MailcasError('E_NOT_FOUND', `no message ${missing.join(' ')} of ${o.user}${o.mailbox ? ` in ${o.mailbox}` : ''}`);
      });
    });
}
