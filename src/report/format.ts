import type { StorageReport } from './report.js';

export const mb = (n: number): string => `${(n / 1e6).toFixed(2)} MB`;
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
