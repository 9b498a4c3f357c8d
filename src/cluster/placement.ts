import crypto from 'node:crypto';

/**
 * Which node a user lives on: weighted rendezvous hashing (highest random
 * weight). Every (user, node) pair gets a score from a hash; the user goes
 * to the node with the highest score, scaled by the node's weight. Adding a
 * node moves only the users whose new top score is the new node's (about
 * weight / total weight of them); removing one moves only its own users.
 * Pure: the same inputs give the same plan on every machine.
 */
export interface ClusterNode {
  name: string;
  /** Capacity share (any positive number: disk size, say). */
  weight: number;
}

/** A hash of (user, node) as a number in (0, 1). */
function unit(user: string, node: string): number {
  const h = crypto.createHash('sha256').update(node).update('\0').update(user).digest();
  // 52 bits: exact in a double; +1 and +2 keep it away from 0 and 1
  const x = h.readUIntBE(0, 6) * 16 + (h[6] >> 4);
  return (x + 1) / (2 ** 52 + 2);
}

export function placeUser(user: string, nodes: ClusterNode[]): string {
  let best = '';
  let bestScore = -Infinity;
  for (const n of nodes) {
    if (!(n.weight > 0)) continue;
    // -w / ln(u): the weighted rendezvous score (larger is better)
    const score = -n.weight / Math.log(unit(user, n.name));
    if (score > bestScore || (score === bestScore && n.name < best)) {
      best = n.name;
      bestScore = score;
    }
  }
  if (!best) throw new Error('no node with a positive weight');
  return best;
}

export interface Move {
  user: string;
  from: string;
  to: string;
  messages: number;
  bytes: number;
}

/** The moves that bring `current` (user -> node, with sizes) to the placement over `nodes`. */
export function planMoves(current: { user: string; node: string; messages: number; bytes: number }[], nodes: ClusterNode[]): Move[] {
  const out: Move[] = [];
  for (const u of current) {
    const to = placeUser(u.user, nodes);
    if (to !== u.node) out.push({ user: u.user, from: u.node, to, messages: u.messages, bytes: u.bytes });
  }
  return out.sort((a, b) => (a.from === b.from ? (a.user < b.user ? -1 : 1) : a.from < b.from ? -1 : 1));
}

/** Per node: users, messages and bytes after a placement. */
export function loads(users: { user: string; messages: number; bytes: number }[], nodes: ClusterNode[]): Map<string, { users: number; messages: number; bytes: number }> {
  const m = new Map(nodes.map((n) => [n.name, { users: 0, messages: 0, bytes: 0 }]));
  for (const u of users) {
    const l = m.get(placeUser(u.user, nodes))!;
    l.users++;
    l.messages += u.messages;
    l.bytes += u.bytes;
  }
  return m;
}

/** Nodes file: lines `NAME WEIGHT [STORE_DIR]`; blank lines and # comments skipped. */
export function parseNodes(text: string): (ClusterNode & { store?: string })[] {
  const out: (ClusterNode & { store?: string })[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#')) return;
    const [name, weight, store, ...rest] = l.split(/\s+/);
    const w = Number(weight);
    if (!name || !(w > 0) || rest.length) throw new Error(`nodes file line ${i + 1}: expected "NAME WEIGHT [STORE_DIR]" with a positive weight`);
    if (out.some((n) => n.name === name)) throw new Error(`nodes file line ${i + 1}: node ${name} is listed twice`);
    out.push({ name, weight: w, ...(store ? { store } : {}) });
  });
  if (!out.length) throw new Error('the nodes file lists no node');
  return out;
}
