import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { type ConnectionOptions, createSecureContext, type SecureContext } from 'node:tls';
import type { Backend, BackendSpec } from '../../plugin-sdk/index.js';

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** Plugin-level settings: defaults for every TLS backend, and what only the plugin sets. */
export interface UpstreamDefaults {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  min_version: TlsVersion;
  max_version: TlsVersion;
  ciphers?: string;
}

/** The files a secure context is made of; backends with the same files share one context. */
interface ContextFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Options passed to `tls.connect` for one backend; built once, reused for every connection. */
export type DialOptions = ConnectionOptions & {
  host: string;
  port: number;
  allowHalfOpen: true;
  noDelay: true;
};

/** What the connect tap needs for one TLS backend. */
export interface BackendTls {
  /** The spec it was built from: the registry replaces the spec when a backend is re-added. */
  spec: BackendSpec;
  contextKey: string;
  options: DialOptions;
  /** Latest TLS session from this backend, offered for resumption on the next connection. */
  session: Buffer | undefined;
  /** Set when the backend's TLS settings are unusable: connections to it fail. */
  error: Error | null;
}

/**
 * Secure contexts keyed by the files they are built from (a CA bundle parsed once, not per
 * backend or per connection), plus the per-backend dial options that point at them.
 */
export class UpstreamContexts {
  readonly #contexts = new Map<string, { files: ContextFiles; context: SecureContext }>();
  /** Times a secure context was built (start, new settings, reload). */
  built = 0;

  constructor(readonly defaults: UpstreamDefaults) {}

  /** Builds the TLS state of a backend. Throws an Error naming the backend and the file. */
  forBackend(backend: Pick<Backend, 'address' | 'host' | 'port' | 'spec'>): BackendTls {
    const { spec } = backend;
    const files: ContextFiles = {
      ca: str(spec.ca) ?? this.defaults.ca,
      cert: str(spec.cert) ?? this.defaults.cert,
      key: str(spec.key) ?? this.defaults.key,
    };
    const contextKey = JSON.stringify([files.ca, files.cert, files.key]);
    let entry = this.#contexts.get(contextKey);
    if (entry === undefined) {
      try {
        entry = { files, context: this.#build(files) };
      } catch (err) {
        throw new Error(`backend ${backend.address}: ${(err as Error).message}`);
      }
      this.#contexts.set(contextKey, entry);
    }
    // Node's default: SNI is the host when it is a name; an IP address sends none.
    const servername =
      str(spec.servername) ??
      this.defaults.servername ??
      (isIP(backend.host) === 0 ? backend.host : undefined);
    const options: DialOptions = {
      host: backend.host,
      port: backend.port,
      allowHalfOpen: true,
      noDelay: true,
      secureContext: entry.context,
      rejectUnauthorized: spec.insecure_skip_verify !== true,
    };
    if (servername !== undefined) options.servername = servername;
    return { spec, contextKey, options, session: undefined, error: null };
  }

  /**
   * Re-reads every context's files (SIGHUP). A context whose files are now bad keeps its old
   * version. Returns the errors, one per failed context.
   */
  reload(): Error[] {
    const errors: Error[] = [];
    for (const entry of this.#contexts.values()) {
      try {
        entry.context = this.#build(entry.files);
      } catch (err) {
        errors.push(err as Error);
      }
    }
    return errors;
  }

  /** The current context for a key (after a reload, dial options must point at it). */
  context(key: string): SecureContext | undefined {
    return this.#contexts.get(key)?.context;
  }

  /** Drops contexts no backend uses any more. */
  prune(inUse: Iterable<string>): void {
    const keep = new Set(inUse);
    for (const key of this.#contexts.keys()) if (!keep.has(key)) this.#contexts.delete(key);
  }

  get size(): number {
    return this.#contexts.size;
  }

  #build(files: ContextFiles): SecureContext {
    if ((files.cert === undefined) !== (files.key === undefined))
      throw new Error(
        `a client certificate needs both cert and key (got only ${files.cert ? 'cert' : 'key'})`,
      );
    const ca = files.ca === undefined ? undefined : read(files.ca, 'CA');
    if (ca !== undefined) parseCertificate(ca);
    let cert: { file: string; data: Buffer } | undefined;
    let key: { file: string; data: Buffer } | undefined;
    if (files.cert !== undefined && files.key !== undefined) {
      cert = read(files.cert, 'client certificate');
      key = read(files.key, 'client key');
      const x509 = parseCertificate(cert);
      let privateKey: ReturnType<typeof createPrivateKey>;
      try {
        privateKey = createPrivateKey(key.data);
      } catch (err) {
        throw new Error(`client key file ${key.file} holds no usable private key: ${(err as Error).message}`);
      }
      if (!x509.checkPrivateKey(privateKey))
        throw new Error(`client key file ${key.file} does not match client certificate file ${cert.file}`);
    }
    this.built++;
    return createSecureContext({
      ca: ca?.data,
      cert: cert?.data,
      key: key?.data,
      minVersion: this.defaults.min_version,
      maxVersion: this.defaults.max_version,
      ...(this.defaults.ciphers === undefined ? {} : { ciphers: this.defaults.ciphers }),
    });
  }
}

/** Backend TLS options that only mean something with `tls: true`. */
export const TLS_ONLY_FIELDS = ['insecure_skip_verify', 'ca', 'servername', 'cert', 'key'] as const;

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function read(path: string, what: string): { file: string; data: Buffer } {
  const file = resolve(path);
  try {
    return { file, data: readFileSync(file) };
  } catch (err) {
    throw new Error(`cannot read ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

function parseCertificate({ file, data }: { file: string; data: Buffer }): X509Certificate {
  try {
    return new X509Certificate(data);
  } catch (err) {
    throw new Error(`file ${file} holds no PEM certificate: ${(err as Error).message}`);
  }
}
