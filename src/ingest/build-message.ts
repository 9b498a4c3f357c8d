import type { ByteSource } from '../split/byte-source.js';
import type { MimeNode, Segment } from '../split/tokenizer.js';
import { tokenize } from '../split/tokenizer.js';
import { encodeTree, treeOf } from '../split/mime-tree.js';
import { firstField } from '../split/header-fields.js';
import type { Layout, LayoutSegment, PartSegment } from '../layout/layout.js';
import type { Recipe } from '../recipe/recipe.js';
import { candidatesFor } from '../recipe/choose.js';
import { identityCanonicalize } from '../recipe/identity.js';
import { PartSink, type PartData } from '../cas/part-data.js';
import { HEADER_BLOCK_MAX_BYTES, LITERAL_INLINE_MAX_BYTES } from '../limits.js';

export interface BuildOptions {
  tmpDir: string;
  /** Canonical parts smaller than this stay inline. */
  inlineThreshold: number;
  /** Key for keyed hashing (dedup domain), or null for the global domain. */
  domainKey: Buffer | null;
  /** Decode transfer encodings (false: every part stored as it came). */
  decode: boolean;
  /** Analysis: keep only what inline parts need (larger parts are hashed and measured, not kept). */
  analysis?: boolean;
  /** Refuse messages with more MIME entities than this (default DEFAULT_MAX_PARTS). */
  maxParts?: number;
  /** Refuse MIME nesting deeper than this (default: deeper than MAX_MIME_DEPTH is kept as opaque bytes). */
  maxDepth?: number;
}

/** A leaf part as recorded in the parts table. */
export interface PartInfo {
  path: string | null;
  contentType: string;
  filename: string | null;
  cte: string;
  recipe: Recipe['t'];
  rawSize: number;
  size: number;
  hash: Buffer | null;
}

/** A blob this message needs stored. */
export interface BlobNeed {
  data: PartData;
  contentType: string;
  /** References from this message. */
  count: number;
}

export interface BuiltMessage {
  layout: Layout;
  /** The MIME structure as byte offsets (encoded; see split/mime-tree.ts), null for the whole-message fallback. */
  tree: Buffer | null;
  parts: PartInfo[];
  /** By hex key. */
  blobs: Map<string, BlobNeed>;
  envelope: Envelope;
  dispose(): void;
}

export interface Envelope {
  date: string | null;
  subject: string | null;
  from: string | null;
  to: string | null;
  cc: string | null;
  messageId: string | null;
  inReplyTo: string | null;
}

/** Splits a spooled message into its layout and the canonical part data it references. */
export function buildMessage(src: ByteSource, opts: BuildOptions): BuiltMessage {
  const tok = tokenize(src, { maxParts: opts.maxParts, maxDepth: opts.maxDepth });
  const b = new Builder(src, opts);
  try {
    for (const s of tok.segments) b.add(s);
  } catch (e) {
    b.dispose();
    throw e;
  }
  return b.done(envelopeOf(tok.root), encodeTree(treeOf(tok.root, src)));
}

/** The whole message as one part stored as it came (the fallback when a split does not reassemble exactly). */
export function buildWhole(src: ByteSource, opts: BuildOptions): BuiltMessage {
  const b = new Builder(src, opts);
  b.rawPart(0, src.size, null);
  return b.done(envelopeOf(null), null);
}

class Builder {
  private readonly segments: LayoutSegment[] = [];
  private readonly parts: PartInfo[] = [];
  private readonly blobs = new Map<string, BlobNeed>();
  private readonly temps: PartData[] = [];

  constructor(private readonly src: ByteSource, private readonly opts: BuildOptions) {}

  add(s: Segment): void {
    const len = s.end - s.start;
    if (s.kind === 'header') {
      if (len <= HEADER_BLOCK_MAX_BYTES) this.segments.push({ k: 'header', path: s.node?.path ?? '', bytes: Buffer.from(this.src.read(s.start, s.end)) });
      else this.rawPart(s.start, s.end, null);
    } else if (s.kind === 'literal') {
      if (len <= LITERAL_INLINE_MAX_BYTES) this.pushLiteral(Buffer.from(this.src.read(s.start, s.end)));
      else this.rawPart(s.start, s.end, null);
    } else {
      this.bodyPart(s.start, s.end, s.node!);
    }
  }

  private pushLiteral(bytes: Buffer): void {
    const last = this.segments[this.segments.length - 1];
    if (last && last.k === 'literal') last.bytes = Buffer.concat([last.bytes, bytes]);
    else this.segments.push({ k: 'literal', bytes });
  }

  rawPart(start: number, end: number, node: MimeNode | null): void {
    const sink = this.sink();
    const recipe = identityCanonicalize(this.src, start, end, sink);
    this.finishPart(sink, recipe!, start, end, node);
  }

  private bodyPart(start: number, end: number, node: MimeNode): void {
    const sink = this.sink();
    let recipe: Recipe | null = null;
    for (const cand of candidatesFor(node.info.cte, { decode: this.opts.decode })) {
      recipe = cand(this.src, start, end, sink);
      if (recipe) break;
      sink.reset();
    }
    this.finishPart(sink, recipe!, start, end, node);
  }

  private sink(): PartSink {
    const keep = this.opts.analysis ? Math.max(this.opts.inlineThreshold, 256 * 1024) : null;
    return new PartSink(this.opts.tmpDir, this.opts.domainKey, undefined, keep);
  }

  private finishPart(sink: PartSink, recipe: Recipe, start: number, end: number, node: MimeNode | null): void {
    const data = sink.finish();
    const inline = data.size < this.opts.inlineThreshold;
    const contentType = node ? node.info.type : 'application/octet-stream';
    const seg: PartSegment = {
      k: 'part',
      path: node ? node.path : null,
      recipe,
      rawSize: end - start,
      size: data.size,
      inline: inline ? Buffer.from(data.buffer!) : null,
      hash: inline ? null : data.key,
    };
    this.segments.push(seg);
    if (inline) {
      data.dispose();
    } else {
      const hex = data.key.toString('hex');
      const need = this.blobs.get(hex);
      if (need) {
        need.count++;
        data.dispose();
      } else {
        this.blobs.set(hex, { data, contentType, count: 1 });
        this.temps.push(data);
      }
    }
    this.parts.push({
      path: seg.path,
      contentType: node ? node.info.type : '',
      filename: node?.info.filename ?? null,
      cte: node?.info.cte ?? '',
      recipe: recipe.t,
      rawSize: seg.rawSize,
      size: seg.size,
      hash: seg.hash,
    });
  }

  dispose(): void {
    for (const t of this.temps) t.dispose();
  }

  done(envelope: Envelope, tree: Buffer | null): BuiltMessage {
    return {
      layout: { segments: this.segments },
      tree,
      parts: this.parts,
      blobs: this.blobs,
      envelope,
      dispose: () => this.dispose(),
    };
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function text(v: string | undefined): string | null {
  if (v === undefined) return null;
  const b = Buffer.from(v, 'latin1');
  try {
    return utf8.decode(b);
  } catch {
    return v;
  }
}

function envelopeOf(root: MimeNode | null): Envelope {
  const f = root?.fields ?? [];
  return {
    date: text(firstField(f, 'date')),
    subject: text(firstField(f, 'subject')),
    from: text(firstField(f, 'from')),
    to: text(firstField(f, 'to')),
    cc: text(firstField(f, 'cc')),
    messageId: text(firstField(f, 'message-id')),
    inReplyTo: text(firstField(f, 'in-reply-to')),
  };
}
