import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { BackendSpec } from '../../plugin-sdk/index.js';
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
  services: Record<string, PersistedService>;
}

const documentSchema = {
  type: 'object',
  required: ['version', 'services'],
  properties: {
    version: { const: 1 },
    updated_at: { type: 'string' },
    services: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['backends'],
        properties: {
          backends: {
            type: 'array',
            items: {
              type: 'object',
              required: ['address', 'weight'],
              properties: {
                address: { type: 'string' },
                weight: { type: 'integer', minimum: 1, maximum: 256 },
                draining: { type: 'boolean' },
                origin: { enum: ['config', 'api'] },
              },
            },
          },
          config_backends: { type: 'array', items: { type: 'object' } },
        },
      },
    },
  },
};
const validateDocument = compileStrict<StateDocument>(documentSchema);

/**
 * The state file on disk. Writes are atomic (temp file + fsync + rename + directory fsync), so
 * a crash leaves either the old or the new document, never half of one. Saves coalesce: while
 * one write runs, later callers share the next one, which records the state as it is then.
 */
export class StateFile {
  #writing: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly snapshot: () => StateDocument,
  ) {}

  /** The document, undefined when the file does not exist; throws with a clear message when unreadable. */
  async load(): Promise<StateDocument | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return undefined;
      throw new Error(`cannot read state file ${this.path}: ${e.code ?? e.message}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(
        `state file ${this.path} is not valid JSON (${(err as Error).message}); fix or delete it to start from the config`,
      );
    }
    if (!validateDocument(doc)) {
      const first = validateDocument.errors?.[0];
      throw new Error(
        `state file ${this.path} is invalid at "${first?.instancePath || '/'}": ${first?.message}; fix or delete it to start from the config`,
      );
    }
    return doc;
  }

  /** Writes the current snapshot; resolves once a write that started after this call is on disk. */
  save(): Promise<void> {
    if (this.#next) return this.#next;
    if (!this.#writing) return this.#start();
    const next = this.#writing.then(noop, noop).then(() => {
      this.#next = undefined;
      return this.#start();
    });
    this.#next = next;
    return next;
  }

  /** Waits for writes in flight (errors were reported to the callers of `save`). */
  async flush(): Promise<void> {
    await (this.#next ?? this.#writing)?.then(noop, noop);
  }

  #start(): Promise<void> {
    const write = this.#write(this.snapshot());
    this.#writing = write;
    const clear = () => {
      if (this.#writing === write) this.#writing = undefined;
    };
    write.then(clear, clear);
    return write;
  }

  async #write(doc: StateDocument): Promise<void> {
    const dir = dirname(this.path);
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const file = await open(tmp, 'wx', 0o644);
      try {
        await file.writeFile(`${JSON.stringify(doc, null, 2)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(noop);
      const e = err as NodeJS.ErrnoException;
      throw new Error(`cannot write state file ${this.path}: ${e.code ?? e.message}`);
    }
    // The rename is durable only once the directory entry is on disk.
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
}

function noop(): void {}
