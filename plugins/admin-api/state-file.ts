import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { BackendSpec } from '../../plugin-sdk/index.js';
import { notRegularFile } from './check.js';
import { compileStrict } from './validation.js';

/** One backend as recorded: its spec with the current weight, whether it is drained, and its origin. */
export interface PersistedBackend extends BackendSpec {
  address: string;
  weight: number;
  draining?: boolean;
  /** `config` or `api` (absent in files written before origins were recorded). */
  origin?: 'config' | 'api' | string;
}

export interface PersistedService {
  /** The service's backend list after the last API change; replaces the config's list on start. */
  backends: PersistedBackend[];
  /** The config's list when this was written, to warn when the config changed since. */
  config_backends: BackendSpec[];
}

export interface StateDocument {
  version: 1;
  updated_at: string;
  /** The last journal record this document includes (0 or absent: none). */
  seq?: number;
  services: Record<string, PersistedService>;
}

/** A change after the document, one JSON line of the journal. */
export type JournalChange =
  /** The service's whole list (the first change of a service the file did not record yet). */
  | { service: string; list: PersistedBackend[]; config_backends: BackendSpec[] }
  /** A backend added or changed (the same address keeps its place in the list). */
  | { service: string; set: PersistedBackend }
  /** A backend removed. */
  | { service: string; remove: string };

export type JournalRecord = JournalChange & { seq: number };

const backendSchema = {
  type: 'object',
  required: ['address', 'weight'],
  properties: {
    address: { type: 'string' },
    weight: { type: 'integer', minimum: 1, maximum: 256 },
    draining: { type: 'boolean' },
    origin: { enum: ['config', 'api'] },
  },
};

const documentSchema = {
  type: 'object',
  required: ['version', 'services'],
  properties: {
    version: { const: 1 },
    updated_at: { type: 'string' },
    seq: { type: 'integer', minimum: 0 },
    services: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['backends'],
        properties: {
          backends: { type: 'array', items: backendSchema },
          config_backends: { type: 'array', items: { type: 'object' } },
        },
      },
    },
  },
};
const validateDocument = compileStrict<StateDocument>(documentSchema);

const recordSchema = {
  type: 'object',
  required: ['seq', 'service'],
  properties: {
    seq: { type: 'integer', minimum: 1 },
    service: { type: 'string' },
    list: { type: 'array', items: backendSchema },
    config_backends: { type: 'array', items: { type: 'object' } },
    set: backendSchema,
    remove: { type: 'string' },
  },
  oneOf: [{ required: ['list'] }, { required: ['set'] }, { required: ['remove'] }],
};
const validateRecord = compileStrict<JournalRecord>(recordSchema);

/** A journal this much larger than the last document is folded into a new document. */
const MIN_COMPACT_BYTES = 1 << 20;

/**
 * The state file on disk: a JSON document plus a journal of the changes since
 * (`<file>.journal`, one JSON line per change), as databases keep a snapshot and a write-ahead
 * log. Rewriting the whole document and syncing it twice (file and folder, for the rename) on
 * every change made adding 4,000 backends one by one take minutes; appending one line and one
 * `fdatasync` costs the same at any size.
 *
 * Durability: a change is acknowledged (`durable` resolves) only once the line holding it is
 * synced. Lines appended while a write runs go out together with the next one (group commit).
 * Atomicity: the document is replaced by temp file + fsync + rename + folder fsync, so a crash
 * leaves the old or the new one; a crash while appending leaves at most one torn last line,
 * which was never acknowledged and is dropped on load. The document records the last journal
 * line it includes (`seq`), so a crash between writing a new document and emptying the journal
 * replays nothing twice. The journal is folded into the document at start, at stop, and when
 * it outgrows the document (so the work per change stays constant on average).
 */
export class StateFile {
  readonly journalPath: string;
  /** Last sequence number handed out, and the last one on disk. */
  #seq = 0;
  #durable = 0;
  /** Lines not written yet, in order, with the highest seq among them. */
  #pending: string[] = [];
  #pendingSeq = 0;
  /** Callers of `durable` waiting, in seq order. */
  #waiters: Array<{ seq: number; resolve: () => void; reject: (err: Error) => void }> = [];
  #writing = false;
  #journal: FileHandle | undefined;
  #journalBytes = 0;
  #documentBytes = 0;
  /** The next write is a new document (after a failed write, or when the journal is large). */
  #compact = false;

  constructor(
    readonly path: string,
    /** The whole state as it is now (every change handed to `append` so far included). */
    private readonly snapshot: () => StateDocument,
    /** The journal is folded into a new document once larger than this and twice the document. */
    private readonly compactBytes = MIN_COMPACT_BYTES,
  ) {
    this.journalPath = `${path}.journal`;
  }

  /**
   * The document with the journal applied, undefined when neither file exists; throws with a
   * clear message when unreadable. A journal that had lines is folded into the document now,
   * so the journal starts empty.
   */
  async load(onTornLine?: (line: number) => void): Promise<StateDocument | undefined> {
    const { doc, records, torn, bytes } = await readState(this.path, this.journalPath);
    if (torn !== undefined) onTornLine?.(torn);
    if (doc === undefined) return undefined;
    this.#seq = this.#durable = Math.max(doc.seq ?? 0, ...records.map((r) => r.seq));
    this.#documentBytes = bytes;
    if (records.length > 0 || torn !== undefined) {
      doc.seq = this.#seq;
      await this.#writeDocument(doc);
      await this.#truncateJournal();
    }
    return doc;
  }

  /** Queues a change for the journal and returns its sequence number; it is written soon. */
  append(change: JournalChange): number {
    const seq = ++this.#seq;
    this.#pending.push(`${JSON.stringify({ seq, ...change })}\n`);
    this.#pendingSeq = seq;
    this.#kick();
    return seq;
  }

  /** Resolves once everything appended up to `seq` (default: so far) is on disk; rejects if that write failed. */
  durable(seq = this.#seq): Promise<void> {
    if (seq <= this.#durable) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      this.#kick();
    });
  }

  /** Writes the whole state as a new document (and empties the journal); resolves once on disk. */
  async rewrite(): Promise<void> {
    this.#compact = true;
    this.#kick();
    await this.#whenIdle();
    if (this.#compact) throw this.#lastError ?? new Error(`cannot write state file ${this.path}`);
  }

  /**
   * Waits for writes in flight, folds the journal into the document and removes it (stop), so
   * the document alone is the state at rest. Errors were reported to the callers of `durable`;
   * a journal that could not be folded stays, and the next start applies it.
   */
  async close(): Promise<void> {
    await this.#whenIdle();
    let folded = true;
    if (this.#journalBytes > 0 || this.#pending.length > 0 || this.#compact)
      folded = await this.rewrite().then(
        () => true,
        () => false,
      );
    await this.#journal?.close().catch(noop);
    this.#journal = undefined;
    if (folded) await unlink(this.journalPath).catch(noop);
  }

  /** Resolved when no write runs. */
  #idle: Array<() => void> = [];
  #lastError: Error | undefined;

  #whenIdle(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #kick(): void {
    if (this.#writing) return;
    if (this.#pending.length === 0 && !this.#compact) return;
    this.#writing = true;
    void this.#drain();
  }

  /** Writes until nothing is pending; one write at a time. */
  async #drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#compact) {
      let upTo: number;
      try {
        if (this.#compact || this.#journalBytes > Math.max(this.compactBytes, 2 * this.#documentBytes)) {
          // The snapshot holds every change handed over so far, pending lines included.
          upTo = this.#seq;
          this.#pending = [];
          this.#compact = false;
          const doc = this.snapshot();
          doc.seq = upTo;
          await this.#writeDocument(doc);
          await this.#truncateJournal();
        } else {
          upTo = this.#pendingSeq;
          const text = this.#pending.join('');
          this.#pending = [];
          const journal = await this.#openJournal();
          await journal.appendFile(text);
          await journal.datasync();
          this.#journalBytes += Buffer.byteLength(text);
        }
        this.#lastError = undefined;
        this.#settle(upTo);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const error = new Error(`cannot write state file ${this.path}: ${e.code ?? e.message}`);
        this.#lastError = error;
        // What failed is in memory only: the next write is a whole new document, which also
        // holds the lines appended meanwhile (their callers wait for it).
        this.#pending = [];
        this.#compact = true;
        this.#fail(upTo!, error);
        break;
      }
    }
    this.#writing = false;
    for (const resolve of this.#idle.splice(0)) resolve();
    // Callers that arrived after a failure get their own attempt.
    if (this.#waiters.length > 0) this.#kick();
  }

  #settle(seq: number): void {
    this.#durable = Math.max(this.#durable, seq);
    while (this.#waiters.length > 0 && this.#waiters[0]!.seq <= this.#durable)
      this.#waiters.shift()!.resolve();
  }

  #fail(seq: number, error: Error): void {
    while (this.#waiters.length > 0 && this.#waiters[0]!.seq <= seq) this.#waiters.shift()!.reject(error);
  }

  async #openJournal(): Promise<FileHandle> {
    if (this.#journal !== undefined) return this.#journal;
    const handle = await open(this.journalPath, 'a', 0o644);
    this.#journal = handle;
    this.#journalBytes = (await handle.stat()).size;
    // A new journal's directory entry must be on disk before its lines count.
    await syncDir(dirname(this.path));
    return handle;
  }

  async #truncateJournal(): Promise<void> {
    this.#journalBytes = 0;
    if (this.#journal !== undefined) {
      await this.#journal.truncate(0);
      await this.#journal.sync();
      return;
    }
    await unlink(this.journalPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async #writeDocument(doc: StateDocument): Promise<void> {
    doc.updated_at = new Date().toISOString();
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    const dir = dirname(this.path);
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const file = await open(tmp, 'wx', 0o644);
      try {
        await file.writeFile(text);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(noop);
      throw err;
    }
    this.#documentBytes = Buffer.byteLength(text);
    // The rename is durable only once the directory entry is on disk.
    await syncDir(dir);
  }
}

/**
 * Reads a state file and its journal without changing either: the document with the
 * journal's records after its `seq` applied, the records, and the line number of a torn last
 * line (dropped). Throws a clear message for anything else that is wrong.
 */
export async function readState(
  path: string,
  journalPath = `${path}.journal`,
): Promise<{ doc: StateDocument | undefined; records: JournalRecord[]; torn?: number; bytes: number }> {
  const text = await readText(path);
  const journal = await readText(journalPath);
  const bytes = text === undefined ? 0 : Buffer.byteLength(text);
  if (text === undefined && journal === undefined) return { doc: undefined, records: [], bytes };
  let doc: StateDocument = { version: 1, updated_at: '', seq: 0, services: {} };
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(
        `state file ${path} is not valid JSON (${(err as Error).message}); fix or delete it to start from the config`,
      );
    }
    if (!validateDocument(parsed)) {
      const first = validateDocument.errors?.[0];
      throw new Error(
        `state file ${path} is invalid at "${first?.instancePath || '/'}": ${first?.message}; fix or delete it to start from the config`,
      );
    }
    doc = parsed;
  }
  const records: JournalRecord[] = [];
  let torn: number | undefined;
  const lines = (journal ?? '').split('\n');
  const complete = journal === undefined || journal.endsWith('\n') ? lines.length - 1 : lines.length;
  for (let i = 0; i < complete; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      record = undefined;
    }
    if (record === undefined || !validateRecord(record)) {
      // A crash while appending leaves a partial last line, never acknowledged.
      if (i === complete - 1 && !journal!.endsWith('\n')) {
        torn = i + 1;
        break;
      }
      throw new Error(
        `state file journal ${journalPath}:${i + 1} is not a valid change record; fix or delete it (and ${path}) to start from the config`,
      );
    }
    if (record.seq > (doc.seq ?? 0)) records.push(record);
  }
  for (const r of records) applyRecord(doc, r);
  return torn === undefined ? { doc, records, bytes } : { doc, records, torn, bytes };
}

/** Applies one journal record to a document, in place. */
function applyRecord(doc: StateDocument, record: JournalRecord): void {
  doc.seq = record.seq;
  if ('list' in record) {
    doc.services[record.service] = { backends: record.list, config_backends: record.config_backends ?? [] };
    return;
  }
  let service = doc.services[record.service];
  if (service === undefined) {
    service = { backends: [], config_backends: [] };
    doc.services[record.service] = service;
  }
  if ('set' in record) {
    const at = service.backends.findIndex((b) => b.address === record.set.address);
    if (at < 0) service.backends.push(record.set);
    else service.backends[at] = record.set;
  } else {
    service.backends = service.backends.filter((b) => b.address !== record.remove);
  }
}

/**
 * The file's text, or undefined when it does not exist. Opened without blocking and checked on
 * the open descriptor (no window for a swap after a check by name): a FIFO or a device would
 * block the read, and the start, forever.
 */
async function readText(path: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return undefined;
    throw new Error(`cannot read state file ${path}: ${e.code ?? e.message}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      const problem = notRegularFile(path) ?? `${path} is not a regular file`;
      throw new Error(`cannot read state file: ${problem}`);
    }
    return await handle.readFile('utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === undefined) throw err;
    throw new Error(`cannot read state file ${path}: ${e.code}`);
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename itself already happened.
  }
}

function noop(): void {}
