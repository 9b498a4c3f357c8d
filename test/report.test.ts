import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, expect, it, beforeAll } from 'vitest';
import { chromium } from 'playwright-core';
import { ROOT, runCli, tmpDir } from './helpers.js';
import { messageWith } from './mailgen.js';
import { writeMaildirs } from '../corpus/generator/generate.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('storage report', () => {
  const store = tmpDir();
  const mail = tmpDir();
  let rep: any;

  beforeAll(async () => {
    writeMaildirs(mail, { seed: 7, users: 6, messages: 240, profile: 'mixed' });
    for (const u of fs.readdirSync(mail)) {
      const r = await runCli(['--store', store, 'import', '--user', `${u}@example.org`, path.join(mail, u)]);
      expect(r.code).toBe(0);
    }
    const att = crypto.randomBytes(300_000);
    const f = path.join(tmpDir(), 'shared.eml');
    fs.writeFileSync(f, messageWith(att, { name: 'quarterly-report.pdf' }));
    for (const u of ['a', 'b', 'c']) expect((await runCli(['--store', store, 'ingest', '--user', u, f])).code).toBe(0);
    const r = await runCli(['--store', store, 'report', '--json']);
    expect(r.code).toBe(0);
    rep = JSON.parse(r.stdout.toString());
  });

  it('--json carries the contract fields with consistent figures', () => {
    for (const k of ['messages', 'logicalBytes', 'storedBytes', 'blobs', 'blobBytes', 'users', 'dedupRatio', 'bytesSaved', 'byComponent', 'byContentType', 'byUser', 'topShared']) {
      expect(rep).toHaveProperty(k);
    }
    expect(rep.users).toBe(6 + 3);
    expect(rep.bytesSaved).toBe(rep.logicalBytes - rep.storedBytes);
    expect(rep.dedupRatio).toBeCloseTo(rep.logicalBytes / rep.storedBytes, 6);
    const comp = Object.fromEntries(rep.byComponent.map((c: any) => [c.component, c]));
    expect(comp.blobs.storedBytes).toBe(rep.blobBytes);
    expect(comp.headers.storedBytes + comp.inlineBodies.storedBytes + comp.metadata.storedBytes).toBe(rep.databaseBytes);
    // top shared parts: ordered by bytes saved, with the fields of the contract
    const top = rep.topShared;
    expect(top.length).toBeGreaterThan(0);
    for (const s of top) expect(Object.keys(s).sort()).toEqual(['bytesSaved', 'contentType', 'filenames', 'hash', 'refs', 'size']);
    for (let i = 1; i < top.length; i++) expect(top[i - 1].bytesSaved).toBeGreaterThanOrEqual(top[i].bytesSaved);
    const pdf = top.find((s: any) => s.filenames.includes('quarterly-report.pdf'));
    expect(pdf).toMatchObject({ size: 300_000, refs: 3, contentType: 'application/pdf' });
    expect(rep.byUser.reduce((a: number, u: any) => a + u.messages, 0)).toBe(rep.messages);
  });

  it('--html renders in a real headless browser with charts carrying the right figures', async () => {
    const html = path.join(tmpDir(), 'report.html');
    const r = await runCli(['--store', store, 'report', '--html', html, '--json']);
    expect(r.code).toBe(0);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!shop\.example)/); // self-contained: nothing to fetch
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const ctx = await browser.newContext({ offline: true, viewport: { width: 900, height: 1400 } });
      const p = await ctx.newPage();
      await p.goto('file://' + html);
      // tiles
      const tiles = await p.$$eval('.tile', (els) => els.map((e) => [e.getAttribute('data-field'), Number(e.getAttribute('data-value'))]));
      const t = Object.fromEntries(tiles);
      expect(t.messages).toBe(rep.messages);
      expect(t.logicalBytes).toBe(rep.logicalBytes);
      // every chart is drawn (non-empty boxes) and its bars carry the report's numbers
      for (const id of ['chart-components', 'chart-types', 'chart-time', 'chart-shared']) {
        const box = await p.locator(`#${id}`).boundingBox();
        expect(box!.width).toBeGreaterThan(300);
        expect(box!.height).toBeGreaterThan(50);
      }
      const bars = await p.$$eval('#chart-components rect.bar', (els) =>
        els.map((e) => ({ label: e.getAttribute('data-label'), series: e.getAttribute('data-series'), value: Number(e.getAttribute('data-value')), width: (e as SVGRectElement).getBBox().width })),
      );
      expect(bars).toHaveLength(rep.byComponent.length * 2);
      for (const c of rep.byComponent) {
        expect(bars.find((b) => b.label === c.component && b.series === 'stored')!.value).toBe(c.storedBytes);
        expect(bars.find((b) => b.label === c.component && b.series === 'logical')!.value).toBe(c.logicalBytes);
      }
      // bar lengths are proportional to the values they show
      const maxBar = bars.reduce((a, b) => (b.value > a.value ? b : a));
      for (const b of bars) expect(b.width).toBeCloseTo((b.value / maxBar.value) * maxBar.width, 0);
      const typeBars = await p.$$eval('#chart-types rect.bar[data-series="logical"]', (els) => els.map((e) => [e.getAttribute('data-label'), Number(e.getAttribute('data-value'))]));
      expect(typeBars).toEqual(rep.byContentType.slice(0, 12).map((c: any) => [c.contentType, c.logicalBytes]));
      const timePts = await p.$$eval('#chart-time circle.pt[data-series="logical"]', (els) => els.map((e) => Number(e.getAttribute('data-value'))));
      expect(timePts.at(-1)).toBe(rep.logicalBytes);
      const shared = await p.$$eval('#chart-shared rect.bar', (els) => els.map((e) => Number(e.getAttribute('data-value'))));
      expect(shared).toEqual(rep.topShared.slice(0, 12).map((s: any) => s.bytesSaved));
      const embedded = JSON.parse((await p.textContent('#report-data'))!);
      expect(embedded.storedBytes).toBe(rep.storedBytes);
      if (process.env.MAILCAS_SCREENSHOT) await p.screenshot({ path: path.join(ROOT, 'docs', 'report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('analyze reports what a store would save, without writing one, next to Dovecot rules', async () => {
    const r = await runCli(['analyze', '--json', mail]);
    expect(r.code).toBe(0);
    const a = JSON.parse(r.stdout.toString());
    expect(a.messages).toBe(240);
    expect(a.storedBytes).toBeLessThan(a.logicalBytes);
    expect(a.dovecot.minSize).toBe(131072);
    expect(a.dovecot.storedBytes).toBeGreaterThan(a.storedBytes);
    expect(fs.existsSync(path.join(mail, 'mailcas-data'))).toBe(false);
    // the estimate is close to what an actual import of the same mail stores
    const s2 = tmpDir();
    for (const u of fs.readdirSync(mail)) await runCli(['--store', s2, 'import', '--user', u, path.join(mail, u)]);
    const real = JSON.parse((await runCli(['--store', s2, 'report', '--json'])).stdout.toString());
    expect(a.blobs).toBe(real.blobs);
    expect(a.storedBytes / real.storedBytes).toBeGreaterThan(0.75);
    expect(a.storedBytes / real.storedBytes).toBeLessThan(1.33);
  });
});
