/**
 * mailcas as a library: `import { Store } from 'mailcas'`.
 *
 *   const store = await Store.open('/var/lib/mailcas');
 *   const { id } = await store.ingest(fs.createReadStream('m.eml'), { user: 'alice' });
 *   (await store.fetch(id, { user: 'alice' })).pipe(process.stdout);
 *   await store.close();
 */
export { Store, type StoreOptions, type MessageRecord } from './store.js';
export type { IngestOptions, IngestResult, Recipient, RecipientResult } from './ingest/ingest.js';
export type { MessageInput, FileInput } from './split/spool.js';
export type { GcOptions, GcReport } from './lifecycle/gc.js';
export type { CheckOptions, CheckReport } from './lifecycle/check.js';
export { MailcasError, isMailcasError, type ErrorCode } from './errors.js';
export type { BlobBackend, BackendProperties, PutSource, PutExpect, PutOptions, ByteRange, ObjectInfo } from './backend/backend.js';
export { FsBackend } from './backend/fs-backend.js';
export { MemoryBackend } from './backend/memory-backend.js';
export { LmtpService, type LmtpOptions } from './delivery/lmtp-server.js';
export { mapRecipient, loadUserMap, type RecipientRules, type Mailbox } from './delivery/recipients.js';
export type { StorageReport } from './report/report.js';
export type { MessageAccess } from './reassemble/message-access.js';
export { parseFetchItems, answerItem, type FetchItem, type FetchAnswer } from './fetch/fetch-items.js';
export { toWire, toJson, type ImapValue } from './fetch/wire.js';
export { HttpService, type HttpServiceOptions } from './service/http-server.js';
export { Tokens } from './service/tokens.js';
export { ImapService, type ImapServiceOptions } from './imap/imap-server.js';
export { PasswordFile } from './imap/passwd.js';
