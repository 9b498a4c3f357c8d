import type { Layout } from './layout.js';
import { decodeLayout, encodeLayout, LayoutCodec, packLayout, unpackLayout } from './layout-codec.js';

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
}

export function packMessageLayout(layout: Layout, dict: { id: number; data: Buffer } | null): PackedLayout {
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

export function toColumns(p: PackedLayout): LayoutColumns {
  return { layout: p.head, codec: p.headCodec, dict: p.dict, inline: p.inline, inline_codec: p.inlineCodec };
}
