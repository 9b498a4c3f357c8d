import zlib from 'node:zlib';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { MailcasError } from '../errors.js';
import type { Recipe } from '../recipe/recipe.js';
import { RECIPE_CODES } from '../recipe/recipe.js';
import { HASH_BYTES } from '../util/hash.js';
import type { Layout, LayoutSegment } from './layout.js';

const VERSION = 1;
const T_HEADER = 1;
const T_LITERAL = 2;
const T_PART_INLINE = 3;
const T_PART_BLOB = 4;

/**
 * Binary form of a layout (before compression), in two parts: `head` holds
 * header blocks, literals and part references; `inline` the canonical bytes
 * of inline parts, in order. They are compressed separately, so the report
 * can say exactly what headers and inline bodies cost, and header queries
 * never inflate bodies.
 */
export function encodeLayout(l: Layout): { head: Buffer; inline: Buffer } {
  const w = new ByteWriter();
  const inl: Buffer[] = [];
  w.u8(VERSION).varint(l.segments.length);
  for (const s of l.segments) {
    switch (s.k) {
      case 'header':
        w.u8(T_HEADER).str(s.path).bytes(s.bytes);
        break;
      case 'literal':
        w.u8(T_LITERAL).bytes(s.bytes);
        break;
      case 'part':
        w.u8(s.hash ? T_PART_BLOB : T_PART_INLINE);
        w.str(s.path ?? '\u0000');
        writeRecipe(w, s.recipe);
        w.varint(s.rawSize).varint(s.size);
        if (s.hash) w.raw(s.hash);
        else if (s.inline?.length) inl.push(s.inline);
        break;
    }
  }
  return { head: w.done(), inline: Buffer.concat(inl) };
}

export function decodeLayout(b: Buffer, inline: Buffer = Buffer.alloc(0), headOnly = false): Layout {
  const r = new ByteReader(b);
  let ip = 0;
  const v = r.u8();
  if (v !== VERSION) throw new MailcasError('E_CORRUPT', `unknown layout version ${v}`);
  const n = r.varint();
  const segments: LayoutSegment[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.u8();
    if (t === T_HEADER) {
      const path = r.str();
      segments.push({ k: 'header', path, bytes: r.bytes() });
    } else if (t === T_LITERAL) {
      segments.push({ k: 'literal', bytes: r.bytes() });
    } else if (t === T_PART_INLINE || t === T_PART_BLOB) {
      const p = r.str();
      const recipe = readRecipe(r);
      const rawSize = r.varint();
      const size = r.varint();
      const blob = t === T_PART_BLOB;
      segments.push({
        k: 'part',
        path: p === '\u0000' ? null : p,
        recipe,
        rawSize,
        size,
        hash: blob ? Buffer.from(r.raw(HASH_BYTES)) : null,
        inline: blob ? null : headOnly ? Buffer.alloc(0) : inline.subarray(ip, (ip += size)),
      });
      if (!blob && !headOnly && ip > inline.length) throw new MailcasError('E_CORRUPT', 'inline bodies shorter than the layout says');
    } else {
      throw new MailcasError('E_CORRUPT', `unknown layout segment ${t}`);
    }
  }
  if (!r.atEnd) throw new MailcasError('E_CORRUPT', 'trailing bytes after layout');
  if (!headOnly && ip !== inline.length) throw new MailcasError('E_CORRUPT', 'inline bodies longer than the layout says');
  return { segments };
}

function writeRecipe(w: ByteWriter, r: Recipe): void {
  w.u8(RECIPE_CODES[r.t]);
  if (r.t === 'base64') w.varint(r.lineLen).u8(r.crlf ? 1 : 0).bytes(r.tail);
  else if (r.t === 'qp') {
    w.varint(r.lineMax).u8((r.crlf ? 1 : 0) | (r.text ? 2 : 0) | (r.wsLiteral ? 4 : 0) | (r.trailingEq ? 8 : 0) | (r.breaks ? 16 : 0));
    w.bytes(r.extra);
    if (r.breaks) w.bytes(r.breaks);
  }
}

function readRecipe(r: ByteReader): Recipe {
  const c = r.u8();
  switch (c) {
    case 0:
      return { t: 'identity' };
    case 1:
      return { t: 'lf' };
    case 2:
      return { t: 'base64', lineLen: r.varint(), crlf: r.u8() === 1, tail: Buffer.from(r.bytes()) };
    case 3: {
      const lineMax = r.varint();
      const flags = r.u8();
      const extra = Buffer.from(r.bytes());
      const breaks = flags & 16 ? Buffer.from(r.bytes()) : null;
      return { t: 'qp', lineMax, crlf: (flags & 1) !== 0, text: (flags & 2) !== 0, extra, wsLiteral: (flags & 4) !== 0, trailingEq: (flags & 8) !== 0, breaks };
    }
    default:
      throw new MailcasError('E_CORRUPT', `unknown recipe ${c}`);
  }
}

/** How a stored layout is compressed. */
export const LayoutCodec = {
  None: 0,
  Deflate: 1,
  /** raw deflate with a preset dictionary (messages.dict names it) */
  DeflateDict: 2,
} as const;
export type LayoutCodec = (typeof LayoutCodec)[keyof typeof LayoutCodec];

export function packLayout(raw: Buffer, dict: Buffer | null, level = 6): { data: Buffer; codec: LayoutCodec } {
  if (raw.length < 64) return { data: raw, codec: LayoutCodec.None };
  const opts: zlib.ZlibOptions = { level };
  if (dict) opts.dictionary = dict;
  const z = zlib.deflateRawSync(raw, opts);
  if (z.length >= raw.length) return { data: raw, codec: LayoutCodec.None };
  return { data: z, codec: dict ? LayoutCodec.DeflateDict : LayoutCodec.Deflate };
}

export function unpackLayout(data: Buffer, codec: number, dict: Buffer | null): Buffer {
  try {
    if (codec === LayoutCodec.None) return data;
    if (codec === LayoutCodec.Deflate) return zlib.inflateRawSync(data);
    if (codec === LayoutCodec.DeflateDict) {
      if (!dict) throw new Error('dictionary missing');
      return zlib.inflateRawSync(data, { dictionary: dict });
    }
  } catch (e) {
    throw new MailcasError('E_CORRUPT', `layout cannot be decompressed: ${(e as Error).message}`, { cause: e });
  }
  throw new MailcasError('E_CORRUPT', `unknown layout codec ${codec}`);
}
