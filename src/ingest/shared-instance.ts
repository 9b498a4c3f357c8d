import { MailcasError } from '../errors.js';
import type { BlobNeed } from './build-message.js';
import type { IngestDeps } from './ingest-deps.js';
import { instanceCodec, newInstance } from '../backend/shared-bucket.js';
import { AsyncMutex } from '../util/async-mutex.js';
import type { MarkerRecord } from '../blob-index/markers.js';

/** Records of a node's markers, through the group commit (durable before the marker is written; removed after it is deleted). */
export interface MarkerRecords {
  record(m: MarkerRecord): Promise<void>;
  forget(m: MarkerRecord): Promise<void>;
}

export interface SharedInstance {
  instance: string;
  codec: number;
  stored: number;
  /** This ingest uploaded the bytes (a new instance). */
  created: boolean;
}

/** One acquisition per content at a time in this process: a second ingest of the same new content finds the first one's instance instead of uploading its own. */
const perContent = new Map<string, { mutex: AsyncMutex; users: number }>();

/**
 * Steps R1-R6 of docs/SCALE-OUT.md for one blob of an ingest that holds a
 * lease (`token`) on it: find an instance of the content in the shared
 * bucket that this node may reference (its marker written after its record,
 * then no tombstone and the object present), or upload a new one and do the
 * same on it. What it answers may be committed; a reference to anything
 * else never is. A collector that closes a fresh upload before its marker
 * lands makes the ingest fail temporarily (the retry finds or makes another).
 */
export async function acquireShared(ctx: Pick<IngestDeps, 'shared' | 'blobStore'>, records: MarkerRecords, token: string, need: BlobNeed, preferred: string | null, damaged: string | null = null): Promise<SharedInstance> {
  const bucket = ctx.shared!;
  const hex = need.data.key.toString('hex');
  let slot = perContent.get(hex);
  if (!slot) perContent.set(hex, (slot = { mutex: new AsyncMutex(), users: 0 }));
  slot.users++;
  const s = slot;
  try {
    return await s.mutex.run(async () => {
      // R2-R4 on one instance: durable record, marker, then no tombstone and the object there
      const usable = async (instance: string): Promise<number | null> => {
        await records.record({ hash: need.data.key, instance, token });
        return bucket.markUsable(need.data.key, instance, token);
      };
      // R5: a marker this ingest does not need (no commit will reference that instance)
      const drop = async (instance: string): Promise<void> => {
        await bucket.deleteMarker(need.data.key, instance, token);
        await records.forget({ hash: need.data.key, instance, token });
      };
      // R1: the instances there are (this node's earlier one first)
      const found = (await bucket.instances(need.data.key))
        .map((i) => i.instance)
        .filter((i) => i !== damaged)
        .sort((a, b) => Number(b === preferred) - Number(a === preferred));
      for (const instance of found) {
        const stored = await usable(instance);
        if (stored !== null) return { instance, codec: instanceCodec(instance), stored, created: false };
        await drop(instance);
      }
      // R6: none usable: upload a new instance (a fresh name: create-if-absent, verified), then R2-R4 on it
      let instance = '';
      const put = await ctx.blobStore.put(need.data, {}, { backend: bucket.objects, key: (codec) => hex + (instance = newInstance(codec)) });
      const stored = await usable(instance);
      if (stored === null) {
        await drop(instance);
        throw new MailcasError('E_BACKEND', `blob ${hex}: the new copy in the shared bucket was collected before this node's marker landed (a collector with a short grace period?): try again`, { transient: true });
      }
      return { instance, codec: put.codec, stored, created: true };
    });
  } finally {
    if (--s.users === 0) perContent.delete(hex);
  }
}
