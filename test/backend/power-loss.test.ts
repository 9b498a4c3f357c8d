// A power-loss model of the filesystem backend: every call by which it changes the disk goes
// through FsOps; this recorder passes each call on to the real filesystem and keeps, beside it,
// what a power cut would leave: file contents as of their last fsync, directory entries as of
// their directory's last fsync (POSIX promises nothing more). After every single call it checks
// that each acknowledged put is in the durable view with its exact bytes, that each acknowledged
// delete stays deleted, and that no object is ever visible torn or wrong.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsBackend } from '../../src/backend/fs-backend.js';
import { realFsOps, type FsOps } from '../../src/backend/fs-ops.js';
import { bufferSource, type PutSource } from '../../src/backend/backend.js';
import { hashBuffer } from '../../src/util/hash.js';
import { tmpDir } from '../helpers.js';

interface Inode {
  data: Buffer;
  durable: Buffer | null;
}
type Entry = { kind: 'file'; ino: Inode } | { kind: 'dir'; dir: Dir };
interface Dir {
  entries: Map<string, Entry>;
  durable: Map<string, Entry>;
}

class PowerLossModel implements FsOps {
  private readonly root: Dir = { entries: new Map(), durable: new Map() };
  private readonly handles = new WeakMap<object, Inode>();
  /** Keys whose put resolved (with their bytes) / whose delete resolved. */
  readonly acked = new Map<string, Buffer>();
  readonly deleted = new Set<string>();
  readonly violations: string[] = [];
  ops = 0;

  constructor(
    private readonly base: string,
    private readonly inner: FsOps = realFsOps,
    /** A deliberately broken variant for the negative control. */
    private readonly skip: (op: string, p: string) => boolean = () => false,
  ) {
    // the backend's root and .tmp exist before the first put (made durable at construction)
    this.mkdirIn('.tmp', true);
  }

  private parts(p: string): string[] {
    const rel = path.relative(this.base, path.resolve(p));
    if (rel.startsWith('..')) throw new Error(`outside the model: ${p}`);
    return rel === '' ? [] : rel.split(path.sep);
  }

  private dirAt(parts: string[], durable = false): Dir | null {
    let d: Dir = this.root;
    for (const name of parts) {
      const e = (durable ? d.durable : d.entries).get(name);
      if (!e || e.kind !== 'dir') return null;
      d = e.dir;
    }
    return d;
  }

  private parentAndName(p: string): { dir: Dir; name: string } {
    const ps = this.parts(p);
    const dir = this.dirAt(ps.slice(0, -1));
    if (!dir) throw new Error(`no such directory in the model: ${p}`);
    return { dir, name: ps[ps.length - 1] };
  }

  private mkdirIn(rel: string, durable: boolean): void {
    const d: Dir = { entries: new Map(), durable: new Map() };
    this.root.entries.set(rel, { kind: 'dir', dir: d });
    if (durable) this.root.durable.set(rel, { kind: 'dir', dir: d });
  }

  private inodeOf(p: string): Inode {
    const inside = !path.relative(this.base, path.resolve(p)).startsWith('..');
    const e = inside ? this.parentAndName(p).dir.entries.get(this.parentAndName(p).name) : undefined;
    if (e?.kind === 'file') return e.ino;
    // a file made outside the backend (a part's temp file): its bytes are whatever is there, none of them synced
    const ino: Inode = { data: fs.readFileSync(p), durable: null };
    return ino;
  }

  /** What a power cut right now would leave at key's final path. */
  private durableObject(key: string): Buffer | null {
    const dir = this.dirAt([key.slice(0, 2), key.slice(2, 4)], true);
    const e = dir?.durable.get(key);
    if (!e || e.kind !== 'file') return null;
    return e.ino.durable ?? Buffer.alloc(0);
  }

  private after(op: string): void {
    this.ops++;
    for (const [key, bytes] of this.acked) {
      const got = this.durableObject(key);
      if (!got) this.violations.push(`after ${op}: acknowledged ${key.slice(0, 8)} would be lost`);
      else if (!got.equals(bytes)) this.violations.push(`after ${op}: acknowledged ${key.slice(0, 8)} would come back wrong`);
    }
    for (const key of this.deleted) if (this.durableObject(key)) this.violations.push(`after ${op}: deleted ${key.slice(0, 8)} would come back`);
    // anything visible under a final name must be whole: a torn object is never acceptable
    for (const [a, ea] of this.root.durable) {
      if (ea.kind !== 'dir' || a === '.tmp') continue;
      for (const [, eb] of ea.dir.durable) {
        if (eb.kind !== 'dir') continue;
        for (const [key, ef] of eb.dir.durable) {
          if (ef.kind !== 'file') continue;
          const bytes = ef.ino.durable ?? Buffer.alloc(0);
          if (!this.acked.has(key) && !this.deleted.has(key) && this.expected.has(key) && !this.expected.get(key)!.some((x) => x.equals(bytes))) {
            this.violations.push(`after ${op}: ${key.slice(0, 8)} visible with bytes nobody wrote in full`);
          }
        }
      }
    }
  }

  /** Every byte string a put may legitimately leave under a key. */
  readonly expected = new Map<string, Buffer[]>();

  async create(p: string): Promise<fsp.FileHandle> {
    const fh = await this.inner.create(p);
    const { dir, name } = this.parentAndName(p);
    const ino: Inode = { data: Buffer.alloc(0), durable: null };
    dir.entries.set(name, { kind: 'file', ino });
    this.handles.set(fh, ino);
    this.after('create');
    return fh;
  }
  async openRead(p: string): Promise<fsp.FileHandle> {
    const fh = await this.inner.openRead(p);
    this.handles.set(fh, this.inodeOf(p));
    return fh;
  }
  async write(fh: fsp.FileHandle, b: Buffer, p: string): Promise<void> {
    await this.inner.write(fh, b, p);
    const ino = this.handles.get(fh)!;
    ino.data = Buffer.concat([ino.data, b]);
    this.after('write');
  }
  async fsync(fh: fsp.FileHandle, p: string): Promise<void> {
    if (!this.skip('fsync', p)) await this.inner.fsync(fh, p);
    const ino = this.handles.get(fh)!;
    if (!this.skip('fsync', p)) ino.durable = Buffer.from(ino.data);
    this.after('fsync');
  }
  close(fh: fsp.FileHandle): Promise<void> {
    return this.inner.close(fh);
  }
  async link(existing: string, name: string): Promise<void> {
    await this.inner.link(existing, name);
    const ino = this.inodeOf(existing);
    const t = this.parentAndName(name);
    t.dir.entries.set(t.name, { kind: 'file', ino });
    this.after('link');
  }
  async rename(from: string, to: string): Promise<void> {
    await this.inner.rename(from, to);
    const f = this.parentAndName(from);
    const e = f.dir.entries.get(f.name)!;
    f.dir.entries.delete(f.name);
    const t = this.parentAndName(to);
    t.dir.entries.set(t.name, e);
    this.after('rename');
  }
  async unlink(p: string): Promise<void> {
    await this.inner.unlink(p);
    const { dir, name } = this.parentAndName(p);
    dir.entries.delete(name);
    this.after('unlink');
  }
  async mkdir(p: string): Promise<void> {
    try {
      await this.inner.mkdir(p);
    } catch (e) {
      // made by a concurrent put whose own record may not have run yet: it exists, record it (once)
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') this.recordDir(p);
      throw e;
    }
    this.recordDir(p);
    this.after('mkdir');
  }
  /** A directory that exists on disk, in the model (kept as it is when already there, with what it holds). */
  private recordDir(p: string): void {
    const { dir, name } = this.parentAndName(p);
    if (dir.entries.get(name)?.kind !== 'dir') dir.entries.set(name, { kind: 'dir', dir: { entries: new Map(), durable: new Map() } });
  }
  async fsyncDir(p: string): Promise<void> {
    if (this.skip('fsyncDir', p)) return this.after('fsyncDir(skipped)');
    await this.inner.fsyncDir(p);
    const d = this.dirAt(this.parts(p));
    if (d) d.durable = new Map(d.entries);
    this.after('fsyncDir');
  }
}

const rand = (n: number) => crypto.randomBytes(n);
const keyOf = (b: Buffer) => hashBuffer(b).toString('hex');

/** Puts, re-puts, adopted temp files, an overwrite and deletes, many at once, through the model. */
async function workload(model: PowerLossModel, backend: FsBackend, scratch: string): Promise<void> {
  const put = async (data: Buffer, viaFile = false, overwrite = false, name?: string): Promise<void> => {
    const key = name ?? keyOf(data);
    model.expected.set(key, [...(model.expected.get(key) ?? []), data]);
    let src: PutSource = bufferSource(data);
    if (viaFile) {
      const f = path.join(scratch, crypto.randomBytes(6).toString('hex'));
      fs.writeFileSync(f, data); // written without fsync, as a part's temp file is
      src = { size: data.length, open: () => [data], file: f };
    }
    await backend.put(key, src, { size: data.length, digest: hashBuffer(data) }, { overwrite });
    model.acked.set(key, data);
    model.deleted.delete(key);
  };
  // several puts at once into one directory none of them has used yet (names chosen: a backend names, it does not hash)
  await Promise.all(Array.from({ length: 6 }, (_, i) => put(rand(3000), i % 2 === 0, false, `abcd${crypto.randomBytes(30).toString('hex')}`)));
  const first = Array.from({ length: 12 }, (_, i) => rand(1000 + i * 997));
  await Promise.all(first.map((d, i) => put(d, i % 3 === 0)));
  // the same keys again (create-exclusive: kept), and new ones that share fan-out directories by chance or not
  await Promise.all([...first.slice(0, 4).map((d) => put(d)), ...Array.from({ length: 8 }, () => put(rand(5000), true))]);
  // healing: overwrite an object in place
  await put(first[5], false, true);
  // deletes, durable on resolve
  for (const d of first.slice(6, 9)) {
    const key = keyOf(d);
    model.acked.delete(key); // while the delete runs, either state is fine
    await backend.delete(key);
    model.deleted.add(key);
  }
  await Promise.all(Array.from({ length: 6 }, () => put(rand(20_000))));
}

describe('power loss (fs backend)', () => {
  it('after every single disk change, each acknowledged object would survive a power cut whole, and no deleted one would return', async () => {
    const root = tmpDir();
    const model = new PowerLossModel(root);
    const backend = new FsBackend(root, { ops: model });
    await workload(model, backend, tmpDir());
    expect(model.ops).toBeGreaterThan(200);
    expect(model.violations).toEqual([]);
    expect(model.acked.size).toBeGreaterThan(20);
  });

  it('the model is not vacuous: a backend that skips one kind of fsync is caught', async () => {
    for (const [what, skip] of [
      ['fan-out directory sync', (op: string, p: string) => op === 'fsyncDir' && /\/[0-9a-f]{2}$/.test(p) && !/\/[0-9a-f]{2}\/[0-9a-f]{2}$/.test(p)],
      ['leaf directory sync', (op: string, p: string) => op === 'fsyncDir' && /\/[0-9a-f]{2}\/[0-9a-f]{2}$/.test(p)],
      ['file data sync', (op: string) => op === 'fsync'],
    ] as const) {
      const root = tmpDir();
      const model = new PowerLossModel(root, realFsOps, skip);
      await workload(model, new FsBackend(root, { ops: model }), tmpDir());
      expect(model.violations.length, what).toBeGreaterThan(0);
    }
  });
});
