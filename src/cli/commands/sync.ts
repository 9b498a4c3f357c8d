import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { MailcasError } from '../../errors.js';
import { Store } from '../../store.js';
import { out, withStore } from '../command-kit.js';

/** Two-way sync between this store and a peer store (docs/SYNC.md). */
export function registerSyncCommands(program: Command): void {
  program
    .command('sync')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mailcas --store /var/lib/mailcas sync --user alice@example.org /mnt/site-b/mailcas\n  $ mailcas --store /var/lib/mailcas sync --all-users --json /mnt/site-b/mailcas\n\nEach store remembers, per peer, which message is which and how far each mailbox was synced: the next run costs what changed. Conflict rules: docs/SYNC.md.',
    )
    .description("two-way sync of a user's mailboxes with another store: messages, flags, expunges, mailboxes")
    .option('--user <user>', 'the user to sync')
    .option('--all-users', 'every user either store has')
    .option('--one-way', 'push only: change the peer, never this store')
    .option('--peer-command <command>', 'a command speaking the sync protocol (not yet: PEER must be a store directory)')
    .option('--json', 'one JSON object per user: user, sent and received (mailboxes created, deleted, recovered; messages, paired, flags, expunges, bytes, blobBytes), conflicts')
    .argument('[peer]', "the peer store's directory")
    .action(async (peer: string | undefined, o: { user?: string; allUsers?: boolean; oneWay?: boolean; peerCommand?: string; json?: boolean }, cmd: Command) => {
      if (o.peerCommand) throw new MailcasError('E_USAGE', '--peer-command is not supported yet: give the peer store directory');
      if (!peer) throw new MailcasError('E_USAGE', 'sync needs the peer store directory');
      if (!o.user === !o.allUsers) throw new MailcasError('E_USAGE', 'sync needs --user U or --all-users');
      if (!fs.existsSync(path.join(peer, 'meta.sqlite'))) throw new MailcasError('E_NOT_FOUND', `no store in ${path.resolve(peer)}`);
      const { syncUser } = await import('../../sync/sync-user.js');
      await withStore(cmd, async (s) => {
        const p = await Store.open(peer, { create: false });
        try {
          if (p.storeId === s.storeId) throw new MailcasError('E_USAGE', `${peer} is this store`);
          const users = o.user ? [o.user] : [...new Set([...s.users(), ...p.users()].map((u) => u.user))].sort();
          for (const user of users) {
            const r = await syncUser(s, p, user, { oneWay: o.oneWay });
            if (o.json) out(JSON.stringify(r));
            else {
              const f = (c: typeof r.sent) => `${c.messages} messages (${c.paired} already there), ${c.flags} flag changes, ${c.expunges} expunges, ${c.mailboxesCreated + c.mailboxesDeleted + c.mailboxesRecovered} mailbox changes`;
              process.stderr.write(`${user}: sent ${f(r.sent)}; received ${f(r.received)}; ${r.conflicts} conflicts merged\n`);
            }
          }
        } finally {
          await p.close();
        }
      });
    });
}
