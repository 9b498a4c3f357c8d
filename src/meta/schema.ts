/**
 * The metadata schema. Everything IMAP asks about a message (headers,
 * structure, size) is answered from here without touching the blob backend.
 *
 * Version 2: message ids are never reused (AUTOINCREMENT); blobs carry a
 * corrupt flag and per-chunk digests (reads verify before emitting) and
 * their tier (hot, cold object, cold pack entry); a generation counter
 * moves with every change of reference counts.
 * Version 3: cold frames, inline dictionaries. Version 4: blobs in the
 * bucket a cluster's nodes share (blobs.instance, shared_markers).
 * Version 5: a pack being built names its builder (packs.token, the lease
 * token of the tier or repack writing it), so gc leaves it alone while the
 * builder lives and the builder's publish fails once gc has taken it.
 * Version 6: a checksum of each message's header blocks, layout, inline
 * bodies and MIME tree (messages.layout_sum), checked on every read;
 * computed for existing messages by the upgrade.
 * Version 7: mailbox state. Messages carry IMAP flags, keywords and the
 * modification sequence of their last change; mailboxes have rows of their
 * own (HIGHESTMODSEQ, subscription, special use), made for every mailbox
 * that holds mail by the upgrade; expunges leave a record (uid, modseq)
 * for clients and peer stores that ask what vanished.
 * Version 8: two-way sync with peer stores. Per peer, which local message is
 * which of the peer's (sync_map), and how far each mailbox was synced
 * (sync_mailboxes: the local modseq up to which its changes reached the peer);
 * a copy made by sync carries its original's identity (messages.guid), and an
 * expunge records the identity it removed (expunged.guid).
 */
export const SCHEMA_VERSION = 8;

/** Counter bumped by every transaction that changes reference counts (commit, expunge, repair). */
export const GENERATION = 'generation';

/** The messages table under a name (the 1 -> 2 migration builds it beside the old one). */
function messagesTable(name: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale id (IMAP UID, log line) never names another message
  user       TEXT    NOT NULL,
  mailbox    TEXT    NOT NULL,
  size       INTEGER NOT NULL,
  hash       BLOB    NOT NULL,     -- BLAKE3 of the exact bytes
  received   INTEGER NOT NULL,     -- unix ms
  codec      INTEGER NOT NULL,     -- layout compression
  dict       INTEGER,              -- preset dictionary id (codec 2)
  layout     BLOB    NOT NULL,     -- header blocks, literals, part references
  inline     BLOB,                 -- canonical bytes of inline parts
  inline_codec INTEGER NOT NULL DEFAULT 0,
  -- accounting for the report (computed once at ingest)
  header_bytes INTEGER NOT NULL DEFAULT 0,  -- raw header blocks and structural literals
  layout_raw   INTEGER NOT NULL DEFAULT 0,  -- layout before compression
  inline_raw   INTEGER NOT NULL DEFAULT 0,  -- inline canonical bytes before compression
  new_bytes    INTEGER NOT NULL DEFAULT 0,  -- blob bytes this message's ingest added
  fallback   INTEGER NOT NULL DEFAULT 0,  -- 1: stored whole after a failed reassembly check
  -- top-level header fields, unfolded (queryable without decoding the layout)
  date       TEXT,
  subject    TEXT,
  from_addr  TEXT,
  to_addr    TEXT,
  cc_addr    TEXT,
  message_id TEXT,
  in_reply_to TEXT,
  tree       BLOB,                 -- MIME structure as byte offsets (split/mime-tree.ts): BODYSTRUCTURE and sections without blob reads
  inline_dict INTEGER,             -- preset dictionary of the inline bodies (inline_codec 2; set by compact)
  layout_sum BLOB,                 -- checksum of the decoded layout, inline bodies and tree (layout/layout-sum.ts); NULL: not known
  flags      INTEGER NOT NULL DEFAULT 0,  -- IMAP system flags, a bit each (mailbox/flags.ts)
  keywords   TEXT,                 -- IMAP keywords, space-separated; NULL: none
  modseq     INTEGER NOT NULL DEFAULT 1,  -- the mailbox's modification sequence at this message's last change (RFC 7162)
  guid       TEXT                  -- a copy made by sync: the identity of the message it copies (NULL: its own, STOREID:ID)
);`;
}

const MESSAGES_INDEXES = `CREATE INDEX IF NOT EXISTS messages_user ON messages(user, mailbox, id);
CREATE INDEX IF NOT EXISTS messages_msgid ON messages(message_id);
CREATE INDEX IF NOT EXISTS messages_hash ON messages(hash);`;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value BLOB
) WITHOUT ROWID;

-- one row per stored message; layout = compressed segment list (header blocks, literals, part refs)
${messagesTable('messages')}
${MESSAGES_INDEXES}

-- one row per leaf part (report and structure queries); hash is NULL for inline parts
CREATE TABLE IF NOT EXISTS parts (
  message_id   INTEGER NOT NULL,
  seq          INTEGER NOT NULL,
  path         TEXT,
  content_type TEXT NOT NULL,
  filename     TEXT,
  cte          TEXT NOT NULL,
  recipe       TEXT NOT NULL,
  raw_size     INTEGER NOT NULL,
  size         INTEGER NOT NULL,
  hash         BLOB,
  PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS parts_hash ON parts(hash) WHERE hash IS NOT NULL;

-- content-addressed blobs and their reference counts (kept in the message's own transaction)
CREATE TABLE IF NOT EXISTS blobs (
  hash         BLOB PRIMARY KEY,
  domain       TEXT    NOT NULL,   -- dedup domain ('' = global)
  size         INTEGER NOT NULL,   -- canonical bytes
  stored       INTEGER NOT NULL,   -- bytes in the backend
  codec        INTEGER NOT NULL,   -- 0 raw, 1 deflate, 2 brotli (cas/blob-codec.ts)
  refs         INTEGER NOT NULL,
  created      INTEGER NOT NULL,
  zero_since   INTEGER,            -- unix ms when refs last reached 0
  content_type TEXT,
  corrupt      INTEGER NOT NULL DEFAULT 0, -- 1: a read or scrub found the object missing or not matching its hash
  chunks       BLOB,               -- BLAKE3 of each VERIFY_CHUNK_BYTES chunk of the canonical bytes (blobs over one chunk)
  tier         INTEGER NOT NULL DEFAULT 0, -- 0: the primary backend (hot); 1: the cold tier (an object, or an entry of a pack)
  pack         INTEGER,            -- cold: the pack holding it (packs.id), or NULL for an object of its own
  pack_offset  INTEGER,            -- where its bytes are in the pack: the entry, or (codec 3) the frame holding it
  pack_length  INTEGER,
  frame_offset INTEGER,            -- codec 3: where it starts in its frame's decoded bytes
  instance     TEXT,               -- tier 2 (shared by a cluster's nodes): which instance of it this node references
  settled      INTEGER             -- tier 2: 1 once gc found its instance to be the one all nodes converge on
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_hot ON blobs(created) WHERE tier = 0;
CREATE INDEX IF NOT EXISTS blobs_pack ON blobs(pack) WHERE pack IS NOT NULL;

-- pack objects in the cold tier: many small blobs in one object, read back with ranged GETs
CREATE TABLE IF NOT EXISTS packs (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  name    TEXT    NOT NULL UNIQUE, -- object key in the cold backend
  size    INTEGER NOT NULL,        -- bytes in the object
  live    INTEGER NOT NULL,        -- bytes of entries blob rows still point at
  created INTEGER NOT NULL,
  retired INTEGER,                 -- unix ms when repacked or emptied: deleted by gc once no reader can be using it
  token   TEXT                     -- while being built: the builder's lease token (NULL once published)
);
CREATE INDEX IF NOT EXISTS blobs_unref ON blobs(zero_since) WHERE refs = 0;

-- a lease protects a blob written by an ingest that has not committed yet
CREATE TABLE IF NOT EXISTS leases (
  hash    BLOB    NOT NULL,
  token   TEXT    NOT NULL,
  expires INTEGER NOT NULL,
  PRIMARY KEY (hash, token)
) WITHOUT ROWID;

-- a node's reference markers in the shared bucket (docs/SCALE-OUT.md): recorded (durably) before the marker is
-- written, removed after it is deleted; one per ingest (its lease token) that went through the bucket
CREATE TABLE IF NOT EXISTS shared_markers (
  hash     BLOB NOT NULL,
  instance TEXT NOT NULL,
  token    TEXT NOT NULL,
  created  INTEGER NOT NULL,
  released INTEGER,              -- when gc first found it unneeded (it is deleted a grace period later: readers in flight)
  PRIMARY KEY (hash, instance, token)
) WITHOUT ROWID;

-- preset dictionaries for header-block compression
CREATE TABLE IF NOT EXISTS dictionaries (
  id      INTEGER PRIMARY KEY,
  data    BLOB    NOT NULL,
  created INTEGER NOT NULL,
  kind    TEXT    NOT NULL DEFAULT 'header'  -- 'header': header blocks (new mail uses the newest); 'inline': inline bodies (compact)
);

-- a user's mailboxes: every mailbox that holds mail has one (made by the delivery that first stores into it),
-- and those made empty by CREATE; modseq is the mailbox's HIGHESTMODSEQ, bumped by every change of it
CREATE TABLE IF NOT EXISTS mailboxes (
  user        TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  uidvalidity INTEGER,              -- NULL: the store's (message ids, the UIDs, are never reused anywhere)
  modseq      INTEGER NOT NULL DEFAULT 1,
  subscribed  INTEGER NOT NULL DEFAULT 0,
  special     TEXT,                 -- RFC 6154 special use (\Sent, \Trash...), or NULL
  created     INTEGER NOT NULL,
  PRIMARY KEY (user, name)
) WITHOUT ROWID;

-- what an expunge removed, and at which modseq (QRESYNC's VANISHED, sync): kept EXPUNGE_RECORD_DAYS
CREATE TABLE IF NOT EXISTS expunged (
  user    TEXT    NOT NULL,
  mailbox TEXT    NOT NULL,
  uid     INTEGER NOT NULL,
  modseq  INTEGER NOT NULL,
  at      INTEGER NOT NULL,
  guid    TEXT,                  -- the message's identity (messages.guid, or STOREID:ID): a sync never brings it back
  PRIMARY KEY (user, mailbox, uid)
) WITHOUT ROWID;

-- two-way sync (mailbox/sync.ts): a peer store is named by its store id; local and remote are message ids
CREATE TABLE IF NOT EXISTS sync_map (
  peer   TEXT    NOT NULL,
  local  INTEGER NOT NULL,
  remote INTEGER NOT NULL,
  PRIMARY KEY (peer, local)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sync_map_remote ON sync_map(peer, remote);
CREATE TABLE IF NOT EXISTS sync_mailboxes (
  peer    TEXT    NOT NULL,
  user    TEXT    NOT NULL,
  mailbox TEXT    NOT NULL,
  modseq  INTEGER NOT NULL,          -- the local HIGHESTMODSEQ this mailbox was synced up to
  PRIMARY KEY (peer, user, mailbox)
) WITHOUT ROWID;

-- counters (verification fallbacks and the like)
CREATE TABLE IF NOT EXISTS counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Upgrades a version-1 store in place (inside the caller's write transaction); ids keep their values. */
export const MIGRATE_1_TO_2 = `
${messagesTable('messages_v2')}
INSERT INTO messages_v2 SELECT *, NULL, NULL, NULL, 0, NULL, 1, NULL FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
${MESSAGES_INDEXES}
ALTER TABLE blobs ADD COLUMN corrupt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN chunks BLOB;
ALTER TABLE blobs ADD COLUMN tier INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN pack INTEGER;
ALTER TABLE blobs ADD COLUMN pack_offset INTEGER;
ALTER TABLE blobs ADD COLUMN pack_length INTEGER;
`;

/** Versions 3 to 7: columns added to existing tables (cold frames, inline dictionaries, shared instances); each added where it is missing. */
export const ADDED_COLUMNS: [table: string, column: string, decl: string][] = [
  ['blobs', 'frame_offset', 'INTEGER'],
  ['blobs', 'instance', 'TEXT'],
  ['blobs', 'settled', 'INTEGER'],
  ['messages', 'inline_dict', 'INTEGER'],
  ['dictionaries', 'kind', "TEXT NOT NULL DEFAULT 'header'"],
  ['packs', 'token', 'TEXT'],
  ['messages', 'layout_sum', 'BLOB'],
  ['messages', 'flags', 'INTEGER NOT NULL DEFAULT 0'],
  ['messages', 'keywords', 'TEXT'],
  ['messages', 'modseq', 'INTEGER NOT NULL DEFAULT 1'],
  ['messages', 'guid', 'TEXT'],
  ['expunged', 'guid', 'TEXT'],
];

/** Indexes on added columns: made once the columns are there (after ADDED_COLUMNS). */
export const INDEXES_ON_ADDED_COLUMNS = 'CREATE INDEX IF NOT EXISTS expunged_guid ON expunged(user, guid) WHERE guid IS NOT NULL';

/** Version 7: every mailbox that holds mail gets its row (subscribed: it was listed and delivered to before). */
export const MAILBOX_ROWS_UPGRADE = `INSERT OR IGNORE INTO mailboxes(user, name, uidvalidity, modseq, subscribed, created)
  SELECT user, mailbox, NULL, 1, 1, CAST(strftime('%s','now') AS INTEGER) * 1000 FROM messages GROUP BY user, mailbox`;
