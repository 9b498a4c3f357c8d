import type { AnalyzeReport } from './analyze.js';
import { mb } from '../report/format.js';

const pct = (a: number, b: number): string => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');

export function formatAnalysis(r: AnalyzeReport): string {
  const d = r.dovecot;
  const rows: [string, string, string][] = [
    ['', 'mailcas', `Dovecot SIS (min ${Math.round(d.minSize / 1024)} KiB)`],
    ['messages', String(r.messages), String(r.messages)],
    ['logical bytes', mb(r.logicalBytes), mb(r.logicalBytes)],
    ['stored bytes', mb(r.storedBytes), mb(d.storedBytes)],
    ['saved', `${mb(r.bytesSaved)} (${pct(r.bytesSaved, r.logicalBytes)})`, `${mb(d.bytesSaved)} (${pct(d.bytesSaved, r.logicalBytes)})`],
    ['shared parts', `${r.blobs} blobs (${mb(r.blobBytes)})`, `${d.uniqueAttachments} of ${d.attachments} attachments`],
    ['  metadata', mb(r.metadataBytes), ''],
  ];
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((x) => x[i].length)));
  const lines = rows.map((x) => `${x[0].padEnd(w[0])}  ${x[1].padStart(w[1])}  ${x[2].padStart(w[2])}`.trimEnd());
  lines.push('', `mailcas would store ${d.storedBytes ? (r.storedBytes / d.storedBytes).toFixed(2) : '-'}x the bytes of Dovecot's single-instance storage (no compression on either side of this estimate's Dovecot figure).`);
  if (r.topShared.length) {
    lines.push('', 'top shared parts');
    for (const s of r.topShared.slice(0, 10)) lines.push(`  ${s.hash.slice(0, 12)}  ${s.contentType.padEnd(24)} ${mb(s.size).padStart(10)} x${String(s.refs).padEnd(4)} saves ${mb(s.bytesSaved).padStart(10)}  ${s.filenames.slice(0, 3).join(', ')}`);
  }
  lines.push('', `analysed ${mb(r.logicalBytes)} in ${r.seconds.toFixed(1)} s (${r.mbPerSecond.toFixed(0)} MB/s)${r.failed ? `; ${r.failed} messages could not be read` : ''}`);
  return lines.join('\n');
}
