import type { StoreContext } from '../store-context.js';

export async function maybeTrainDictionary(_ctx: StoreContext, _after: number): Promise<{ id: number; data: Buffer } | null> {
  return null;
}
