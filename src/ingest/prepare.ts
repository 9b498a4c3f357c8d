import { MailcasError } from '../errors.js';
import type { Spool } from '../split/spool.js';
import { buildMessage, buildWhole, type BlobNeed, type BuiltMessage, type Envelope, type PartInfo } from './build-message.js';
import { verifyPacked } from './verify.js';
import { packMessageLayout, type PackedLayout } from '../layout/packed-layout.js';

/** What preparing a message needs: the store's settings, the dedup domain's key and the current header dictionary. */
export interface PrepareOptions {
  tmpDir: string;
  inlineThreshold: number;
  maxParts: number;
  /** Refuse nesting deeper than this (undefined: keep it as opaque bytes). */
  maxDepth?: number;
  decode: boolean;
  domainKey: Buffer | null;
  dict: { id: number; data: Buffer } | null;
}

/**
 * A message split, canonicalised, packed and verified, ready to be stored:
 * everything the commit needs, and the canonical bytes of its blobs (in
 * memory or in temp files this object owns until dispose).
 */
export interface Prepared {
  size: number;
  hash: Buffer;
  packed: PackedLayout;
  parts: PartInfo[];
  envelope: Envelope;
  /** The MIME structure as byte offsets (encoded), from the split even when the message was stored whole. */
  tree: Buffer | null;
  blobs: BlobNeed[];
  /** Raw bytes of header blocks and structural literals. */
  headerBytes: number;
  /** Why the split did not reassemble (the message was then stored whole), or null. */
  fallback: string | null;
  dispose(): void;
}

/**
 * Splits a spooled message and proves the split: the layout is decoded
 * exactly as it will be stored, reassembled with the canonical bytes
 * produced here and compared with the input's hash. A split that does not
 * reassemble is replaced by the whole message as one raw part. Pure
 * computation and temp files: runs on the main thread or in a worker.
 */
export async function prepareMessage(spool: Spool, opts: PrepareOptions): Promise<Prepared> {
  const bopts = { tmpDir: opts.tmpDir, inlineThreshold: opts.inlineThreshold, maxParts: opts.maxParts, maxDepth: opts.maxDepth, domainKey: opts.domainKey, decode: opts.decode };
  const expect = { hash: spool.hash, size: spool.size };
  let built: BuiltMessage = buildMessage(spool.source, bopts);
  const { tree, envelope } = built; // they describe the bytes, however the message ends up stored
  try {
    let packed = packMessageLayout(built.layout, opts.dict, tree);
    let failure = await verifyPacked(packed, opts.dict?.data ?? null, built.blobs, expect);
    const fallback = failure;
    if (failure) {
      built.dispose();
      built = buildWhole(spool.source, bopts);
      packed = packMessageLayout(built.layout, opts.dict, tree);
      failure = await verifyPacked(packed, opts.dict?.data ?? null, built.blobs, expect);
      if (failure) throw new MailcasError('E_INTERNAL', `message does not reassemble even when stored whole: ${failure}`);
    }
    const b = built;
    return {
      size: spool.size,
      hash: spool.hash,
      packed,
      parts: b.parts,
      envelope,
      tree,
      blobs: [...b.blobs.values()],
      headerBytes: b.layout.segments.reduce((a, g) => a + (g.k === 'part' ? 0 : g.bytes.length), 0),
      fallback,
      dispose: () => b.dispose(),
    };
  } catch (e) {
    built.dispose();
    throw e;
  }
}
