import { newHasher } from '../util/hash.js';
import { coalesce, reassemble, type BlobReader } from '../reassemble/reassemble.js';
import { toColumns, unpackMessageLayout, type PackedLayout } from '../layout/packed-layout.js';
import type { BlobNeed } from './build-message.js';

/**
 * The ingest check: decode the layout exactly as it will be stored,
 * reassemble it with the canonical bytes this ingest produced (the same
 * bytes, by content address, as the blobs it references) and compare the
 * hash and size with the input's. Returns the first failure, or null.
 */
export async function verifyPacked(
  packed: PackedLayout,
  dictData: Buffer | null,
  blobs: Map<string, BlobNeed>,
  expect: { hash: Buffer; size: number },
): Promise<string | null> {
  try {
    const layout = unpackMessageLayout(toColumns(packed), () => dictData);
    const reader: BlobReader = {
      read(hash) {
        const need = blobs.get(hash.toString('hex'));
        if (!need) throw new Error(`blob ${hash.toString('hex')} not produced by this ingest`);
        return need.data.chunks();
      },
    };
    const h = newHasher();
    let n = 0;
    // hashed in ~64 KiB pieces: one native call per piece, not per segment (messages of many small parts)
    for await (const c of coalesce(reassemble(layout, reader))) {
      h.update(c);
      n += c.length;
    }
    if (n !== expect.size) return `reassembled ${n} bytes, input had ${expect.size}`;
    if (!h.digest().equals(expect.hash)) return 'reassembled bytes differ from the input';
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
