import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Store } from '../../store.js';
import { MailcasError } from '../../errors.js';
import { DEFAULT_COLLECT_GRACE_SECONDS } from '../../limits.js';
import { loads, parseNodes, planMoves } from '../../cluster/placement.js';
import { nonNegative, out, storeDir, withStore } from '../command-kit.js';

/** Nodes of a cluster and moving users: move-user, cluster plan/collect/forget-node. */
export function registerClusterCommands(program: Command): void {
  moveUserCommand(program);
  clusterCommand(program);
}

function moveUserCommand(program: Command): void {
  program
    .command('move-user')
    .addHelpText('after', '\nExamples:\n  $ mailcas --store /srv/node1 move-user --user alice --to /srv/node2\n\nCrash-safe and resumable: every message is copied and read back on the target before any is removed from the\nsource; run the same command again after an interruption. Mail delivered to the source during the move stays there:\nrun it again after switching delivery.')
    .description("move a user's messages and mailboxes to another store (same ids order, mailboxes and received times; exact bytes)")
    .requiredOption('--user <user>', 'the user to move (required)')
    .requiredOption('--to <dir>', 'the target store (created when missing)')
    .option('--json', 'one JSON line with what was moved')
    .action(async (o: { user: string; to: string; json?: boolean }, cmd: Command) => {
      if (path.resolve(o.to) === path.resolve(storeDir(cmd))) throw new MailcasError('E_USAGE', '--to is the store itself');
      await withStore(cmd, async (from) => {
        const { moveUser } = await import('../../admin/move-user.js');
        const to = await Store.open(o.to, { workers: 0 });
        try {
          const rep = await moveUser(from, to, o.user);
          if (o.json) out(JSON.stringify(rep));
          else out(`${o.user}: ${rep.messages} messages (${rep.bytes} bytes) now on ${o.to}: ${rep.copied} copied (${rep.newBlobBytes} blob bytes written there), ${rep.alreadyThere} already there; ${rep.expunged} removed from ${storeDir(cmd)}`);
        } finally {
          await to.close();
        }
      });
    });
}

function clusterCommand(program: Command): void {
  const cluster = program.command('cluster').description('nodes sharing one bucket: where users belong (see docs/SCALE-OUT.md)');
  cluster
    .command('plan')
    .addHelpText(
      'after',
      '\nNodes file: lines "NAME WEIGHT STORE_DIR" (weight: capacity share, e.g. disk size in GB).\n\nExamples:\n  $ mailcas cluster plan --nodes /etc/mailcas/nodes\n  $ mailcas cluster plan --nodes nodes.txt --json | jq .moves',
    )
    .description('place users on nodes by weighted rendezvous hashing and print the moves needed (reads each node store; changes nothing)')
    .requiredOption('--nodes <file>', 'lines "NAME WEIGHT STORE_DIR"')
    .option('--json', 'one JSON object: moves, and users/messages/bytes per node after them')
    .action(async (o: { nodes: string; json?: boolean }) => {
      let nodes: ReturnType<typeof parseNodes>;
      try {
        nodes = parseNodes(fs.readFileSync(o.nodes, 'utf8'));
      } catch (e) {
        throw new MailcasError('E_USAGE', `${o.nodes}: ${(e as Error).message}`);
      }
      const current: { user: string; node: string; messages: number; bytes: number }[] = [];
      for (const n of nodes) {
        if (!n.store) throw new MailcasError('E_USAGE', `${o.nodes}: node ${n.name} has no store directory`);
        if (!fs.existsSync(path.join(n.store, 'meta.sqlite'))) continue; // a new, empty node
        const s = await Store.open(n.store, { create: false });
        try {
          for (const u of s.users()) current.push({ ...u, node: n.name });
        } finally {
          await s.close();
        }
      }
      const moves = planMoves(current, nodes);
      const after = loads(current, nodes);
      if (o.json) {
        out(JSON.stringify({ users: current.length, moves, nodes: Object.fromEntries(after) }));
        return;
      }
      for (const m of moves) out(`mailcas --store ${nodes.find((n) => n.name === m.from)!.store} move-user --user ${m.user} --to ${nodes.find((n) => n.name === m.to)!.store}   # ${m.messages} messages, ${m.bytes} bytes`);
      out(`# ${moves.length} of ${current.length} users move (${moves.reduce((a, m) => a + m.bytes, 0)} bytes of mail)`);
      for (const [name, l] of after) out(`# after: ${name}: ${l.users} users, ${l.messages} messages, ${l.bytes} bytes`);
    });

  cluster
    .command('forget-node')
    .addHelpText(
      'after',
      '\nFor a node that has left the cluster for good: move its users away first (move-user), retire its store, then run\nthis from any other node. Its reference markers go (the blobs only it referenced are then the collector\'s) and so do\nits own objects (nodes/NAME/). Never run it for a node that still serves mail.\n\nExamples:\n  $ mailcas --store /srv/node1 cluster forget-node --node node3 --dry-run\n  $ mailcas --store /srv/node1 cluster forget-node --node node3 && mailcas --store /srv/node1 cluster collect',
    )
    .description('remove what a retired node left in the shared bucket: its reference markers and its own objects')
    .requiredOption('--node <name>', 'the retired node')
    .option('--dry-run', 'count what would be deleted')
    .option('--json', 'machine-readable output')
    .action(async (o: { node: string; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.forgetNode(o.node, { dryRun: o.dryRun });
        if (o.json) out(JSON.stringify({ node: o.node, dryRun: !!o.dryRun, ...r }));
        else out(`node ${o.node}: ${o.dryRun ? 'would delete' : 'deleted'} ${r.markers} reference markers and ${r.objects} objects of its own (${r.bytes} bytes)`);
      });
    });

  cluster
    .command('collect')
    .addHelpText(
      'after',
      '\nRun it from any node (cron, a systemd timer), on several at once if you like: it deletes the blobs in the shared\nbucket that no node references any more (each node\'s own gc removes its references first). It needs nothing but the bucket.\n\nExamples:\n  $ mailcas --store /srv/node1 cluster collect\n  $ mailcas --store /srv/node1 cluster collect --dry-run --json',
    )
    .description('delete shared blobs no node of the cluster has a reference marker on (docs/SCALE-OUT.md)')
    .option('--grace <seconds>', 'leave blobs uploaded less than this long ago alone', (v) => nonNegative(v, '--grace'), DEFAULT_COLLECT_GRACE_SECONDS)
    .option('--dry-run', 'report what would be deleted')
    .option('--json', 'machine-readable output')
    .action(async (o: { grace: number; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd, async (s) => {
        const r = await s.collect({ graceSeconds: o.grace, dryRun: o.dryRun });
        if (o.json) out(JSON.stringify(r));
        else
          out(
            `${r.instances} shared blobs: ${r.referenced} referenced, ${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted} (${r.deletedBytes} bytes), ${r.closedKept} closed but still referenced, ${r.young} too young; ${r.staleTombstones} stale tombstones removed`,
          );
      });
    });
}
