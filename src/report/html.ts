import type { StorageReport } from './report.js';
import { mb } from './format.js';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const COLORS = { logical: '#9aa5b1', stored: '#2f6fdf', saved: '#2e9e5b' };

interface BarRow {
  label: string;
  values: { series: 'logical' | 'stored' | 'saved'; value: number }[];
}

/** Horizontal grouped bars; every bar carries its exact value in data attributes. */
function barChart(id: string, title: string, rows: BarRow[]): string {
  const labelW = 230;
  const width = 760;
  const plotW = width - labelW - 110;
  const barH = 14;
  const groupH = rows.length ? rows[0].values.length * (barH + 2) + 10 : 0;
  const height = 30 + rows.length * groupH + 10;
  const max = Math.max(1, ...rows.flatMap((r) => r.values.map((v) => v.value)));
  const parts: string[] = [];
  rows.forEach((r, i) => {
    const y0 = 30 + i * groupH;
    parts.push(`<text x="${labelW - 8}" y="${y0 + groupH / 2}" text-anchor="end" dominant-baseline="middle" class="lbl">${esc(r.label.slice(0, 34))}</text>`);
    r.values.forEach((v, j) => {
      const w = (v.value / max) * plotW;
      const y = y0 + j * (barH + 2);
      parts.push(
        `<rect class="bar" data-chart="${id}" data-label="${esc(r.label)}" data-series="${v.series}" data-value="${v.value}" x="${labelW}" y="${y}" width="${w.toFixed(2)}" height="${barH}" fill="${COLORS[v.series]}"><title>${esc(r.label)} ${v.series}: ${mb(v.value)}</title></rect>`,
        `<text x="${labelW + w + 4}" y="${y + barH / 2}" dominant-baseline="middle" class="val">${mb(v.value)}</text>`,
      );
    });
  });
  const series = [...new Set(rows.flatMap((r) => r.values.map((v) => v.series)))];
  const legend = series.map((s, i) => `<rect x="${labelW + i * 110}" y="6" width="12" height="12" fill="${COLORS[s]}"/><text x="${labelW + i * 110 + 16}" y="16" class="lbl">${s}</text>`).join('');
  return `<section><h2>${esc(title)}</h2><svg id="${id}" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(title)}">${legend}${parts.join('')}</svg></section>`;
}

/** Cumulative logical vs stored bytes over arrival order. */
function lineChart(r: StorageReport): string {
  const pts = r.overTime;
  const width = 760;
  const height = 280;
  const left = 70;
  const bottom = 30;
  const plotW = width - left - 20;
  const plotH = height - bottom - 30;
  const maxY = Math.max(1, ...pts.map((p) => p.logicalBytes));
  const maxX = Math.max(1, ...pts.map((p) => p.messages));
  const X = (m: number): number => left + (m / maxX) * plotW;
  const Y = (v: number): number => 20 + plotH - (v / maxY) * plotH;
  const line = (k: 'logicalBytes' | 'storedBytes', color: string, name: string): string =>
    `<polyline class="series" data-series="${name}" fill="none" stroke="${color}" stroke-width="2.5" points="${[{ messages: 0, logicalBytes: 0, storedBytes: 0 }, ...pts].map((p) => `${X(p.messages).toFixed(1)},${Y(p[k]).toFixed(1)}`).join(' ')}"/>` +
    pts.map((p) => `<circle class="pt" data-series="${name}" data-messages="${p.messages}" data-value="${p[k]}" cx="${X(p.messages).toFixed(1)}" cy="${Y(p[k]).toFixed(1)}" r="2.5" fill="${color}"><title>${p.messages} messages: ${name} ${mb(p[k])}</title></circle>`).join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<line x1="${left}" x2="${left + plotW}" y1="${Y(maxY * f)}" y2="${Y(maxY * f)}" class="grid"/><text x="${left - 6}" y="${Y(maxY * f)}" text-anchor="end" dominant-baseline="middle" class="lbl">${mb(maxY * f)}</text>`).join('');
  return `<section><h2>Dedup over time</h2><p class="note">Cumulative bytes as messages arrived: as delivered (grey) and what the store added for them (blue).</p><svg id="chart-time" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="dedup over time">${ticks}${line('logicalBytes', COLORS.logical, 'logical')}${line('storedBytes', COLORS.stored, 'stored')}<text x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle" class="lbl">messages (${maxX})</text></svg></section>`;
}

/** A self-contained page (no network, no scripts needed) with the report's figures and charts. */
export function renderHtmlReport(r: StorageReport, opts: { title?: string } = {}): string {
  const title = opts.title ?? 'mailcas storage report';
  const tiles = [
    ['messages', String(r.messages), 'messages'],
    ['users', String(r.users), 'users'],
    ['logical', mb(r.logicalBytes), 'logicalBytes'],
    ['stored', mb(r.storedBytes), 'storedBytes'],
    ['saved', mb(r.bytesSaved), 'bytesSaved'],
    ['ratio', r.dedupRatio === null ? '-' : `${r.dedupRatio.toFixed(2)}x`, 'dedupRatio'],
  ]
    .map(([k, v, f]) => `<div class="tile" data-field="${f}" data-value="${(r as unknown as Record<string, number>)[f]}"><div class="k">${k}</div><div class="v">${v}</div></div>`)
    .join('');
  const components = barChart(
    'chart-components',
    'Bytes by component',
    r.byComponent.map((c) => ({ label: c.component, values: [{ series: 'logical', value: c.logicalBytes }, { series: 'stored', value: c.storedBytes }] })),
  );
  const types = barChart(
    'chart-types',
    'Bytes by content type',
    r.byContentType.slice(0, 12).map((c) => ({ label: c.contentType, values: [{ series: 'logical', value: c.logicalBytes }, { series: 'stored', value: c.storedBytes }] })),
  );
  const shared = barChart(
    'chart-shared',
    'Top shared parts (bytes saved)',
    r.topShared.slice(0, 12).map((s) => ({ label: s.filenames[0] ?? `${s.contentType} ${s.hash.slice(0, 8)}`, values: [{ series: 'saved', value: s.bytesSaved }] })),
  );
  const sharedTable = `<table id="shared-table"><thead><tr><th>hash</th><th>type</th><th>file names</th><th>size</th><th>refs</th><th>saved</th></tr></thead><tbody>${r.topShared
    .map((s) => `<tr data-hash="${s.hash}"><td><code>${s.hash.slice(0, 16)}</code></td><td>${esc(s.contentType)}</td><td class="names">${esc(s.filenames.join(', '))}</td><td>${mb(s.size)}</td><td>${s.refs}</td><td>${mb(s.bytesSaved)}</td></tr>`)
    .join('')}</tbody></table>`;
  const savings = `<p class="note">Saved ${mb(r.bytesSaved)}: ${mb(r.dedupSaved)} by dedup, ${mb(r.decodeSaved)} by transfer-decoding, ${mb(r.compressionSaved)} by compression (figures overlap with the database's own overhead).</p>`;
  const json = JSON.stringify(r).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2733;max-width:820px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.tiles{display:flex;gap:10px;flex-wrap:wrap}.tile{border:1px solid #d5dbe1;border-radius:6px;padding:8px 12px;min-width:100px}
.tile .k{color:#5b6875;font-size:12px}.tile .v{font-size:18px;font-weight:600;white-space:nowrap}
.lbl{font-size:11px;fill:#33404d}.val{font-size:10px;fill:#5b6875}.grid{stroke:#e3e7eb}
table{border-collapse:collapse;font-size:12px}td,th{border-bottom:1px solid #e3e7eb;padding:3px 8px;text-align:left}td{white-space:nowrap}td.names{white-space:normal}
.note{color:#5b6875;font-size:12px}
</style></head><body>
<h1>${esc(title)}</h1>
<div class="tiles">${tiles}</div>
${savings}
${components}
${types}
${lineChart(r)}
${shared}
${sharedTable}
<script type="application/json" id="report-data">${json}</script>
</body></html>
`;
}
