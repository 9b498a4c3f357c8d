import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';
import type { Recipe } from './recipe.js';
import { base64Canonicalize, base64Encoder } from './base64.js';
import { lfCanonicalize, lfEncoder } from './lf.js';
import { identityCanonicalize, identityEncoder } from './identity.js';
import { qpCanonicalize, qpEncoder } from './qp.js';

/**
 * The canonicalisers worth trying for a part, best first, by its
 * Content-Transfer-Encoding. Identity always succeeds, so it is always last.
 */
export function candidatesFor(cte: string, opts: { decode: boolean } = { decode: true }): Canonicalizer[] {
  if (!opts.decode) return [identityCanonicalize];
  switch (cte) {
    case 'base64':
      return [base64Canonicalize, lfCanonicalize, identityCanonicalize];
    case 'quoted-printable':
      return [qpCanonicalize, lfCanonicalize, identityCanonicalize];
    case 'binary':
      return [identityCanonicalize];
    default:
      return [lfCanonicalize, identityCanonicalize];
  }
}

export function encoderFor(r: Recipe): RecipeEncoder {
  switch (r.t) {
    case 'identity':
      return identityEncoder();
    case 'lf':
      return lfEncoder();
    case 'base64':
      return base64Encoder(r.lineLen, r.crlf, r.tail);
    case 'qp':
      return qpEncoder(r);
  }
}
