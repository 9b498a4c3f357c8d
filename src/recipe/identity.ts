import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';
import { IDENTITY } from './recipe.js';

export const identityCanonicalize: Canonicalizer = (src, start, end, sink) => {
  for (const c of src.chunks(start, end)) sink.write(c, !src.stable);
  return IDENTITY;
};

export function identityEncoder(): RecipeEncoder {
  return { push: (b) => b, end: () => EMPTY };
}

const EMPTY = Buffer.alloc(0);
