import type { StorageReport } from './report.js';

/** A byte count for people: B, KB, MB, GB, TB (decimal units), three significant digits; never "0.00 MB" for a small one. */
export function mb(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}
const pct = (a: number, b: number): string => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');

function table(head: string[] | null, rows: string[][], right: boolean[]): string {
  const w = right.map((_, i) => Math.max(head ? head[i].length : 0, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]): string => r.map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  return [...(head ? [fmt(head), w.map((n) => '-'.repeat(n)).join('  ')] : []), ...rows.map(fmt)].join('\n');
}

/** The human table of `mailcas report`. */
export function formatReport(r: StorageReport): string {
  if (r.messages === 0) return `the store is empty: no messages yet (its database takes ${mb(r.databaseBytes)}; ${r.blobs} blobs)`;
  const out: string[] = [];
  out.push(
    table(
      null,
      [
        ['messages', String(r.messages)],
        ['users', String(r.users)],
        ['logical bytes', mb(r.logicalBytes)],
        ['stored bytes', mb(r.storedBytes)],
        ['  database', mb(r.databaseBytes)],
        ['  blobs', `${mb(r.blobBytes)} in ${r.blobs} blobs`],
        ['saved', `${mb(r.bytesSaved)} (${pct(r.bytesSaved, r.logicalBytes)}; ratio ${(r.dedupRatio ?? 0).toFixed(2)}x)`],
        ['  by dedup', mb(r.dedupSaved)],
        ['  by decoding', mb(r.decodeSaved)],
        ['  by compression', mb(r.compressionSaved)],
      ],
      [false, false],
    ),
  );
  // (dedup, decoding and compression are each measured against what came before it and before the metadata the
  // store adds: they explain the saving, they are not its parts)
  out.push('  (the three overlap, and the database the store adds is counted against them: they need not add up to "saved")');
  out.push('', 'by component');
  out.push(table(['component', 'logical', 'stored'], r.byComponent.map((c) => [c.component, mb(c.logicalBytes), mb(c.storedBytes)]), [false, true, true]));
  out.push('', 'by content type');
  out.push(
    table(
      ['content type', 'parts', 'logical', 'stored'],
      r.byContentType.slice(0, 12).map((c) => [c.contentType, String(c.parts), mb(c.logicalBytes), mb(c.storedBytes)]),
      [false, true, true, true],
    ),
  );
  if (r.topShared.length) {
    out.push('', 'top shared parts');
    out.push(
      table(
        ['hash', 'type', 'size', 'refs', 'saved', 'file names'],
        r.topShared.slice(0, 10).map((s) => [s.hash.slice(0, 12), s.contentType, mb(s.size), String(s.refs), mb(s.bytesSaved), s.filenames.join(', ').slice(0, 50)]),
        [false, false, true, true, true, false],
      ),
    );
  }
  if (r.byUser.length > 1) {
    out.push('', 'by user');
    out.push(
      table(
        ['user', 'messages', 'logical', 'metadata', 'blob refs'],
        r.byUser.slice(0, 12).map((u) => [u.user, String(u.messages), mb(u.logicalBytes), mb(u.metadataBytes), mb(u.referencedBlobBytes)]),
        [false, true, true, true, true],
      ),
    );
  }
  if (r.splitFallbacks) out.push('', `messages stored whole after a failed split check: ${r.splitFallbacks}`);
  return out.join('\n');
}
