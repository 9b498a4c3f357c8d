/**
 * An encoding recipe says how to turn a part's stored canonical bytes back
 * into the exact bytes the message carried. Every recipe is verified on
 * ingest (re-encoded and compared) before a part is stored in decoded form.
 */
export type Recipe =
  /** Stored exactly as it came. */
  | { t: 'identity' }
  /** Canonical text uses CRLF; the original used bare LF throughout. */
  | { t: 'lf' }
  /**
   * Canonical bytes are the base64-decoded data. The original is standard
   * base64 with padding, wrapped every `lineLen` characters (0: one line)
   * with CRLF or LF between lines, followed by `tail` (trailing whitespace
   * and line breaks after the last data character).
   */
  | { t: 'base64'; lineLen: number; crlf: boolean; tail: Buffer }
  /**
   * Canonical bytes are the quoted-printable-decoded data; with `text`,
   * hard line breaks are CRLF in the canonical bytes (RFC 2045), without it
   * the original has no hard breaks and every byte came from an escape or a
   * literal. The original is reproduced by an encoder with upper-case hex
   * that escapes the bytes RFC 2045 requires plus `extra`, escapes
   * whitespace at the end of a line unless `wsLiteral`, and puts soft line
   * breaks either greedily at `lineMax` (0: never) or, when `breaks` is set,
   * exactly at those canonical offsets (delta varints: what word-wrapping
   * encoders such as Gmail's or Outlook's produce). `trailingEq`: the data
   * ends with a bare "=" (a soft break whose line break belongs to the next
   * delimiter).
   */
  | { t: 'qp'; lineMax: number; crlf: boolean; text: boolean; extra: Buffer; wsLiteral: boolean; breaks: Buffer | null; trailingEq: boolean };

export type RecipeKind = Recipe['t'];

export const IDENTITY: Recipe = { t: 'identity' };

/** Writes and reads recipes in the layout's binary form. */
export const RECIPE_CODES: Record<RecipeKind, number> = { identity: 0, lf: 1, base64: 2, qp: 3 };
