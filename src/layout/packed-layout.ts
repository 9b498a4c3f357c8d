import type { Layout } from './layout.js';
import { MailcasError } from '../errors.js';
import { decodeLayout, encodeLayout, LayoutCodec, packLayout, unpackLayout } from './layout-codec.js';
import { layoutSum } from './layout-sum.js';

/** A layout as stored in the messages table. */
export interface PackedLayout {
  head: Buffer;
  headCodec: LayoutCodec;
  /** Preset dictionary the head was compressed with. */
  dict: number | null;
  inline: Buffer | null;
  inlineCodec: LayoutCodec;
  /** Uncompressed sizes (for the report's compression figures). */
  headRaw: number;
  inlineRaw: number;
  /** The layout checksum (layout-sum.ts) over the encoded head and inline bodies and `tree`. */
  sum: Buffer;
}

/** A layout packed for its row; `tree` is the MIME tree stored beside it (covered by the same checksum). */
export function packMessageLayout(layout: Layout, dict: { id: number; data: Buffer } | null, tree: Buffer | null = null): PackedLayout {
  const enc = encodeLayout(layout);
  const h = packLayout(enc.head, dict?.data ?? null);
  const i = enc.inline.length ? packLayout(enc.inline, null) : null;
  return {
    head: h.data,
    headCodec: h.codec,
    dict: h.codec === LayoutCodec.DeflateDict ? dict!.id : null,
    inline: i ? i.data : null,
    inlineCodec: i ? i.codec : LayoutCodec.None,
    headRaw: enc.head.length,
    inlineRaw: enc.inline.length,
    sum: layoutSum(enc.head, enc.inline.length ? enc.inline : null, tree),
  };
}

/** The columns of a messages row that hold its layout. */
export interface LayoutColumns {
  layout: Buffer;
  codec: number;
  dict: number | null;
  inline: Buffer | null;
  inline_codec: number;
  /** Dictionary of the inline bodies (set by compact); undefined is read as none. */
  inline_dict?: number | null;
}

/** Decodes a stored layout. `headOnly`: skip the inline bodies (header queries); inline parts then have no bytes. */
export function unpackMessageLayout(r: LayoutColumns, dictionary: (id: number) => Buffer | null, headOnly = false): Layout {
  const head = unpackLayout(r.layout, r.codec, r.dict != null ? dictionary(r.dict) : null);
  const inline = r.inline && !headOnly ? unpackLayout(r.inline, r.inline_codec, r.inline_dict != null ? dictionary(r.inline_dict) : null) : undefined;
  return decodeLayout(head, inline, headOnly);
}

/** A row's layout columns with the tree and checksum stored beside them. */
export type SummedColumns = LayoutColumns & { tree: Buffer | null; sum: Buffer | null };

/**
 * Decodes a stored layout and compares its decoded bytes, inline bodies and
 * MIME tree with the row's checksum: `sumOk` null when the row has none
 * (stored before checksums). Throws E_CORRUPT when it cannot be decoded.
 */
export function unpackSummedLayout(r: SummedColumns, dictionary: (id: number) => Buffer | null): { layout: Layout; sumOk: boolean | null } {
  const head = unpackLayout(r.layout, r.codec, r.dict != null ? dictionary(r.dict) : null);
  const inline = r.inline ? unpackLayout(r.inline, r.inline_codec, r.inline_dict != null ? dictionary(r.inline_dict) : null) : null;
  const sumOk = r.sum ? layoutSum(head, inline?.length ? inline : null, r.tree).equals(r.sum) : null;
  return { layout: decodeLayout(head, inline ?? undefined), sumOk };
}

/** Decodes a stored layout after checking it against the row's checksum; E_CORRUPT names `label` when it cannot be decoded or differs. */
export function unpackCheckedLayout(r: SummedColumns, dictionary: (id: number) => Buffer | null, label: string): Layout {
  let got: { layout: Layout; sumOk: boolean | null };
  try {
    got = unpackSummedLayout(r, dictionary);
  } catch (e) {
    throw new MailcasError('E_CORRUPT', `${label}: its stored layout cannot be decoded (${(e as Error).message})`, { cause: e });
  }
  if (got.sumOk === false) {
    throw new MailcasError('E_CORRUPT', `${label}: its header blocks, layout or MIME tree do not match their checksum (damaged metadata: restore the database from a backup)`);
  }
  return got.layout;
}

export function toColumns(p: PackedLayout): LayoutColumns {
  return { layout: p.head, codec: p.headCodec, dict: p.dict, inline: p.inline, inline_codec: p.inlineCodec };
}
