// The library as a package: packed, installed into a scratch project, used through its public
// API (types included) and through the installed `mailcas` bin.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from './helpers.js';

const run = (cmd: string, args: string[], cwd: string, input?: Buffer): string => execFileSync(cmd, args, { cwd, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false' } });

describe('npm package', () => {
  it('npm pack; install into a scratch project; import { Store } from "mailcas" (JS and TypeScript) and the installed bin work', { timeout: 240_000 }, () => {
    const packDir = tmpDir();
    const out = run('npm', ['pack', '--pack-destination', packDir, '--json'], ROOT);
    const tarball = path.join(packDir, JSON.parse(out)[0].filename);
    const files: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);

    const app = tmpDir();
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
    // from npm's cache (the project's own install filled it); native code is not rebuilt: the project's build is copied in
    run('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', tarball], app);
    fs.cpSync(path.join(ROOT, 'node_modules', 'better-sqlite3', 'build'), path.join(app, 'node_modules', 'better-sqlite3', 'build'), { recursive: true });
    const deps = Object.keys(JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'mailcas', 'package.json'), 'utf8')).dependencies);
    expect(deps.sort()).toEqual(['@aws-sdk/client-s3', '@napi-rs/blake-hash', 'better-sqlite3', 'cli-progress', 'commander', 'smtp-server']);

    fs.writeFileSync(
      path.join(app, 'use.ts'),
      `import { Store, MailcasError, type IngestResult } from 'mailcas';
const store = await Store.open(process.argv[2]);
const msg = Buffer.from('Subject: from a library\\r\\n\\r\\nhello\\r\\n');
const r: IngestResult = await store.ingest(msg, { user: 'lib' });
const back = await store.fetchBuffer(r.id, { user: 'lib' });
const missing = await store.fetchBuffer('999', { user: 'lib' }).catch((e: unknown) => e);
console.log(JSON.stringify({ id: r.id, same: back.equals(msg), notFound: missing instanceof MailcasError && missing.code === 'E_NOT_FOUND', messages: store.report().messages }));
await store.close();
`,
    );
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'], skipLibCheck: false } }));
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(app, 'node_modules', '@types'), 'dir');
    run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
    const store = path.join(app, 'store');
    const res = JSON.parse(run(process.execPath, [path.join(app, 'out', 'use.js'), store], app));
    expect(res).toEqual({ id: '1', same: true, notFound: true, messages: 1 });

    const bin = path.join(app, 'node_modules', '.bin', 'mailcas');
    expect(run(bin, ['--version'], app).trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    const m = Buffer.from('Subject: from the bin\r\n\r\nbin\r\n');
    const id = run(bin, ['--store', store, 'ingest', '--user', 'cli'], app, m).trim();
    expect(execFileSync(bin, ['--store', store, 'fetch', '--user', 'cli', id], { cwd: app }).equals(m)).toBe(true);
  });
});
