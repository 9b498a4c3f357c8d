import os from 'node:os';

/**
 * Every limit mailcas applies, in one place, each with its reason.
 * Limits that operators may want to change are defaults of StoreOptions.
 */

/** Messages up to this size are spooled in memory during ingest; larger ones go to a temp file. */
export const SPOOL_MEMORY_BYTES = 4 * 1024 * 1024;

/** Default budget of bytes that all ingests in flight in one Store may hold in memory together (StoreOptions.memoryBudgetBytes). */
export const DEFAULT_MEMORY_BUDGET_BYTES = 96 * 1024 * 1024;

/** Messages at least this large are split and verified in a worker thread (StoreOptions.offloadAbove): a large message never stalls the event loop. */
export const DEFAULT_OFFLOAD_ABOVE_BYTES = 256 * 1024;

/** Worker threads per Store (StoreOptions.workers): one per core. */
export const DEFAULT_WORKERS = (): number => os.availableParallelism();

/** Default refusal limit for one message (StoreOptions.maxMessageBytes). */
export const DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

/**
 * Default refusal limit on MIME entities per message (StoreOptions.maxParts):
 * real mail has a few, digests some hundreds; thousands of empty parts in a
 * few kilobytes are an attack on CPU and memory, refused before they cost either.
 */
export const DEFAULT_MAX_PARTS = 5000;

/**
 * Stores may keep parts below this many canonical bytes inline, never less:
 * a lower threshold turns every tiny part into a durable object write (an
 * fsync each), so a small message of many distinct parts would cost seconds.
 */
export const MIN_INLINE_THRESHOLD = 1024;

/** A header block is parsed (for Content-Type etc.) up to this many bytes; the rest is kept but not parsed. */
export const HEADER_PARSE_BYTES = 1024 * 1024;

/** A header block longer than this ends there: the rest of the node is treated as body (still stored exactly). */
export const HEADER_BLOCK_MAX_BYTES = 4 * 1024 * 1024;

/** A header line longer than this ends the header block (a body line, not a field). */
export const HEADER_LINE_MAX_BYTES = 1024 * 1024;

/**
 * RFC 2231 parameter sections above this number are not continuations
 * (real mail uses a handful; a sender-chosen index must never become a
 * range that is walked or allocated).
 */
export const RFC2231_MAX_SECTION = 999;

/** Boundaries longer than this are not honoured (the multipart is kept as one opaque body). */
export const BOUNDARY_MAX_BYTES = 16 * 1024;

/** Whitespace allowed after a boundary on a delimiter line (RFC 2046 transport padding). */
export const DELIMITER_PADDING_MAX = 1024;

/** MIME nesting deeper than this is kept as opaque body bytes (defends against stack-overflow mail). */
export const MAX_MIME_DEPTH = 64;

/** Literal regions (preamble, epilogue, junk) larger than this are stored as raw parts, not in SQLite rows. */
export const LITERAL_INLINE_MAX_BYTES = 64 * 1024;

/** Default: canonical part bodies smaller than this stay inline in SQLite (see README for the measurement). */
export const DEFAULT_INLINE_THRESHOLD = 4096;

/** Base64 bodies whose trailing whitespace exceeds this are stored as they came. */
export const BASE64_TAIL_MAX = 4096;

/** Quoted-printable decoding is attempted only for parts up to this size (it is done in memory). */
export const QP_MAX_BYTES = 8 * 1024 * 1024;

/** Canonical part bodies up to this size are held in memory during ingest; larger ones go to temp files. */
export const PART_MEMORY_BYTES = 1024 * 1024;

/**
 * Blob reads verify in chunks of this many canonical bytes before emitting
 * any of them (digests recorded at ingest): a corrupt byte never goes out,
 * and memory stays bounded. Equal to PART_MEMORY_BYTES, so every part held
 * in memory is one chunk, verified by its key.
 */
export const VERIFY_CHUNK_BYTES = PART_MEMORY_BYTES;

/** fetch checks messages up to this size whole (against their hash) before their first byte goes out. */
export const WHOLE_CHECK_BYTES = 1024 * 1024;

/** Read/write chunk size for streaming. */
export const IO_CHUNK_BYTES = 256 * 1024;

/** Blob writes one ingest keeps in flight at once (fsyncs and object-store round trips overlap). */
export const PUT_CONCURRENCY = 8;

/** An IDLEing IMAP session looks for changes of its mailbox this often (another process's delivery shows within a second). */
export const IMAP_IDLE_POLL_MS = 400;

/**
 * Expunge records (which UID left a mailbox at which modseq) are kept this
 * long, then gc forgets them: a client (QRESYNC) or peer store that last
 * synced longer ago compares whole UID lists instead.
 */
export const EXPUNGE_RECORD_DAYS = 90;

/** A lease protects an uncommitted blob for this long; an ingest that crashed loses it after this. */
export const LEASE_TTL_SECONDS = 3600;

/**
 * gc removes temp files older than its grace period, never younger than this:
 * a writer in flight may leave its file untouched while it works (a large
 * message's spool while it is split and verified).
 */
export const TEMP_MIN_AGE_MS = 10 * 60_000;

/** A temp file (spool, part, blob write) untouched for this long belongs to a writer that died; it is removed. */
export const TEMP_STALE_SECONDS = 24 * 3600;

/** Default gc grace period: blobs unreferenced for less than this are kept. */
export const DEFAULT_GC_GRACE_SECONDS = 3600;

/** How often a long-running process uploads the write-behind backlog. */
export const WRITE_BEHIND_INTERVAL_MS = 1000;

/** Write-behind refuses new mail (temporarily) past this many bytes waiting for the object store. */
export const DEFAULT_WRITE_BEHIND_MAX_BYTES = 1024 * 1024 * 1024;

/** Blobs `tier` considers per step. */
export const TIER_BATCH = 256;

/** Cold-tier blobs of at most this many stored bytes go into packs; larger ones are objects of their own. */
export const PACK_ENTRY_MAX_BYTES = 256 * 1024;

/** A small deflated blob is re-encoded for the cold tier (in memory) only up to this many canonical bytes; larger ones (a pack entry can inflate far) are packed as they are. */
export const COLD_REENCODE_MAX_BYTES = 4 * 1024 * 1024;

/** Small compressible blobs are packed together in brotli frames of up to this many decoded bytes (a read decodes its frame: ~1 ms). */
export const FRAME_RAW_BYTES = 256 * 1024;

/**
 * Bytes of small blobs (hot bytes plus, for deflated ones, canonical bytes)
 * that tier, flush and the write-behind uploader hold waiting to be packed:
 * past it they are encoded into pieces (compressed, small) before more are
 * read, so one run's memory is about this plus one pack, whatever its batch
 * holds (a batch of 256 deflated 4 MiB logs would otherwise hold 1 GiB).
 */
export const TIER_MEMORY_BYTES = 16 * 1024 * 1024;

/** A pack is closed once it holds about this many bytes (one PUT; read back with ranged GETs). */
export const PACK_TARGET_BYTES = 8 * 1024 * 1024;

/** gc rewrites a pack once less than this fraction of its bytes is still referenced. */
export const REPACK_BELOW = 0.5;

/** Object deletions gc keeps in flight at once (each is a request on an object store). */
export const DELETE_CONCURRENCY = 16;

/** gc deletes at most this many blobs per metadata transaction. */
export const GC_BATCH = 256;

/** The WAL file is truncated back to this size after a checkpoint (a long reader can make it grow meanwhile). */
export const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/** SQLite busy timeout (another process holds the write lock); $MAILCAS_BUSY_TIMEOUT_MS changes it. */
export const SQLITE_BUSY_TIMEOUT_MS = 30_000;

/** How long a writer waits for the database lock before failing temporarily (E_BUSY, exit 75, LMTP 451). */
export function busyTimeoutMs(): number {
  const v = Number(process.env.MAILCAS_BUSY_TIMEOUT_MS);
  return Number.isSafeInteger(v) && v >= 0 ? v : SQLITE_BUSY_TIMEOUT_MS;
}

/**
 * Node of a cluster: blobs larger than this (canonical bytes, global dedup
 * domain) go to the bucket the nodes share and are stored once for all of
 * them; smaller ones stay the node's own (docs/SCALE-OUT.md).
 */
export const SHARED_BLOB_MIN_BYTES = 256 * 1024;

/** The collector leaves instances younger than this alone (an upload whose marker is on its way); liveness only, never safety. */
export const DEFAULT_COLLECT_GRACE_SECONDS = 3600;

/** LMTP: the longest line and the largest header block accepted in DATA. */
export const DEFAULT_LMTP_LIMITS: { maxLineBytes: number; maxHeaderBytes: number } = { maxLineBytes: 1024 * 1024, maxHeaderBytes: 1024 * 1024 };

/** LMTP: recipients per transaction. */
export const DEFAULT_MAX_RECIPIENTS = 1000;

/** HTTP service: connections at once. */
export const DEFAULT_HTTP_MAX_CONNECTIONS = 1024;

/** HTTP service: section bytes one JSON fetch answer may carry. */
export const DEFAULT_MAX_JSON_BYTES = 1024 * 1024;

// ---- the fronts (IMAP, HTTP, LMTP) under hostile clients: one client never takes the server, or other users, down

/** Connections one remote address may hold at once, per front (IMAP, HTTP; LMTP has its MTA): a few hundred idle sockets from one host hold no slots meant for others. */
export const DEFAULT_CONNECTIONS_PER_ADDRESS = 64;

/** IMAP: ranges in one sequence set ("1,3,5:9,..."): a sync client's UID sets have hundreds; each is merged as an interval, never expanded. BAD over it. */
export const IMAP_MAX_SEQUENCE_RANGES = 10_000;

/** IMAP: bytes of one whole command (its lines and literals together), counted before login as after. The front takes no APPEND. BYE over it. */
export const IMAP_COMMAND_MAX_BYTES = 256 * 1024;

/** IMAP: bytes received and not yet parsed before the server stops reading the socket (a flood waits in the kernel, not in memory); twice the longest line, so what is held always holds a line, or is refused as too long one. */
export const IMAP_INPUT_BUFFER_BYTES = 128 * 1024;

/** IMAP: BAD answers (parse errors included) one session gets before BYE. */
export const IMAP_BAD_COMMANDS_MAX = 20;

/** IMAP: failed logins one session gets before BYE (Dovecot disconnects after 3). */
export const IMAP_LOGIN_FAILURES_MAX = 3;

/** IMAP: a failed login is answered this long after it arrived, whatever it cost (Dovecot's auth_failure_delay): no brute force at wire speed, and no timing that tells known users from unknown ones. */
export const IMAP_AUTH_FAILURE_DELAY_MS = 2000;

/** IMAP: LIST/LSUB patterns longer than this are refused (BAD); matching is linear in the pattern anyway. */
export const IMAP_LIST_PATTERN_MAX = 1024;

/** IMAP: message bytes one session may hold read ahead of what it has sent (a FETCH of many large sections; the rest streams in turn). */
export const IMAP_FETCH_AHEAD_SESSION_BYTES = 8 * 1024 * 1024;

/** IMAP: message bytes all sessions of one server may hold read ahead together. */
export const IMAP_FETCH_AHEAD_TOTAL_BYTES = 128 * 1024 * 1024;

/** HTTP: the request line, headers and body must arrive within this (408 past it; the socket is closed). */
export const HTTP_REQUEST_TIMEOUT_MS = 10_000;

/** LMTP: recipients refused (unknown) in one session before 421 and close: a user map is not for probing. */
export const LMTP_MAX_FAILED_RECIPIENTS = 20;
