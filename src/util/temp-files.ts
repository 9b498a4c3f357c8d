import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { TEMP_STALE_SECONDS } from '../limits.js';

/** A temp file name: what it is for, and randomness (no PID: liveness is judged by age, see cleanStaleTemps). */
export function tempName(kind: string): string {
  return `${kind}-${crypto.randomBytes(12).toString('hex')}`;
}

/**
 * Removes temp files left by writers that died (a crash mid-write). A file
 * is stale when it has not been modified for TEMP_STALE_SECONDS: PIDs are
 * no proof of life (they are reused, and processes in other PID namespaces
 * may share the store), while no live writer leaves its file untouched that long.
 */
export function cleanStaleTemps(dir: string, now = Date.now()): void {
  removeTempsOlderThan(dir, TEMP_STALE_SECONDS * 1000, now);
}

/**
 * Removes a temp file without blocking: unlinking a file of hundreds of MB
 * frees its extents and can take tens of milliseconds, which would stall
 * every other session of an LMTP server. Errors are ignored (the stale-temp
 * sweep removes what is left).
 */
export function removeLater(file: string): void {
  fs.rm(file, { force: true }, () => {});
}

/** The regular files of a directory with their stat: none when it cannot be read; one removed meanwhile is passed over. */
function* filesIn(dir: string): Generator<{ path: string; st: fs.Stats }> {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue; // removed meanwhile
    }
    if (st.isFile()) yield { path: p, st };
  }
}

/** The temp files in a directory (writes in progress, or left by writers that stopped): how many, their bytes, the oldest's age. */
export function tempFilesIn(dir: string, now = Date.now()): { files: number; bytes: number; oldestMs: number } {
  const out = { files: 0, bytes: 0, oldestMs: 0 };
  for (const { st } of filesIn(dir)) {
    out.files++;
    out.bytes += st.size;
    out.oldestMs = Math.max(out.oldestMs, now - st.mtimeMs);
  }
  return out;
}

/** Removes the temp files in a directory untouched for longer than `olderThanMs` (gc: its grace period); answers how many and their bytes. */
export function removeTempsOlderThan(dir: string, olderThanMs: number, now = Date.now()): { files: number; bytes: number } {
  const out = { files: 0, bytes: 0 };
  for (const { path: p, st } of filesIn(dir)) {
    if (now - st.mtimeMs <= olderThanMs) continue;
    try {
      fs.rmSync(p, { force: true });
    } catch {
      continue; // not ours to remove (permissions): left, as before
    }
    out.files++;
    out.bytes += st.size;
  }
  return out;
}
