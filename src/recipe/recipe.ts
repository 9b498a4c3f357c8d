/**
 * An encoding recipe says how to turn a part's stored canonical bytes back
 * into the exact bytes the message carried. Every recipe is verified on
 * ingest (re-encoded and compared) before a part is stored in decoded form.
 */
export type Recipe =
  /** Stored exactly as it came. */
  | { t: 'identity' }
  /** Canonical text uses LF; the original used CRLF throughout. */
  | { t: 'crlf' }
  /**
   * Canonical bytes are the base64-decoded data. The original is standard
   * base64 with padding, wrapped every `lineLen` characters (0: one line)
   * with CRLF or LF between lines, followed by `tail` (trailing whitespace
   * and line breaks after the last data character).
   */
  | { t: 'base64'; lineLen: number; crlf: boolean; tail: Buffer }
  /**
   * Canonical bytes are the quoted-printable-decoded text with hard line
   * breaks as LF. The original is reproduced by the greedy encoder with
   * maximum line length `lineMax` (0: never wrapped), CRLF or LF line
   * breaks, upper-case hex, and `extra` listing the bytes it encodes beyond
   * those RFC 2045 requires.
   */
  | { t: 'qp'; lineMax: number; crlf: boolean; extra: Buffer };

export type RecipeKind = Recipe['t'];

export const IDENTITY: Recipe = { t: 'identity' };

/** Writes and reads recipes in the layout's binary form. */
export const RECIPE_CODES: Record<RecipeKind, number> = { identity: 0, crlf: 1, base64: 2, qp: 3 };
