import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { SniTable } from './sni.js';

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** The plugin options that decide what goes into a secure context. */
export interface CertificateOptions {
  cert: string;
  key: string;
  sni: Record<string, { cert: string; key: string }>;
  min_version: TlsVersion;
  max_version: TlsVersion;
  ciphers?: string;
  client_ca?: string;
}

/** What is logged and reported for each loaded certificate. */
export interface CertificateInfo {
  /** `default`, or the SNI pattern it serves. */
  name: string;
  file: string;
  subject: string;
  notAfter: string;
  expired: boolean;
}

/** One consistent generation of certificates: swapped in whole on reload, or not at all. */
export interface LoadedCertificates {
  /** Options for the listeners' `tls.Server` (`setSecureContext` on reload). */
  serverOptions: SecureContextOptions;
  sni: SniTable;
  info: CertificateInfo[];
  /** Every file read, by absolute path, to tell whether a reload changes anything. */
  contents: Map<string, Buffer>;
}

/** Kept across reloads so session tickets issued before a reload still resume after it. */
export interface SessionKeys {
  ticketKeys: Buffer;
  sessionIdContext: string;
}

/**
 * Reads and checks every certificate, key and CA file, and builds the secure contexts.
 * Throws an Error naming the offending file; nothing is half-loaded.
 */
export function loadCertificates(options: CertificateOptions, keys: SessionKeys): LoadedCertificates {
  const contents = new Map<string, Buffer>();
  const read = (path: string, what: string): { file: string; data: Buffer } => {
    const file = resolve(path);
    let data = contents.get(file);
    if (data === undefined) {
      try {
        data = readFileSync(file);
      } catch (err) {
        throw new Error(`cannot read ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      contents.set(file, data);
    }
    return { file, data };
  };

  const common: SecureContextOptions = {
    minVersion: options.min_version,
    maxVersion: options.max_version,
    ticketKeys: keys.ticketKeys,
    sessionIdContext: keys.sessionIdContext,
    honorCipherOrder: true,
  };
  if (options.ciphers !== undefined) common.ciphers = options.ciphers;
  if (options.client_ca !== undefined) {
    const { file, data } = read(options.client_ca, 'client CA');
    checkCertificate(file, data, 'client CA');
    common.ca = data;
  }

  const info: CertificateInfo[] = [];
  const pair = (name: string, certPath: string, keyPath: string): SecureContextOptions => {
    const cert = read(certPath, 'certificate');
    const key = read(keyPath, 'key');
    const x509 = checkCertificate(cert.file, cert.data, 'certificate');
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey(key.data);
    } catch (err) {
      throw new Error(`key file ${key.file} holds no usable private key: ${(err as Error).message}`);
    }
    // createSecureContext does not check this: a mismatch would only show in every handshake.
    if (!x509.checkPrivateKey(privateKey))
      throw new Error(`key file ${key.file} does not match certificate file ${cert.file}`);
    const notAfter = new Date(x509.validTo);
    info.push({
      name,
      file: cert.file,
      subject: x509.subject.replace(/\n/g, ', '),
      notAfter: notAfter.toISOString(),
      expired: notAfter.getTime() < Date.now(),
    });
    const ctxOptions = { ...common, cert: cert.data, key: key.data };
    try {
      createSecureContext(ctxOptions);
    } catch (err) {
      throw new Error(`certificate file ${cert.file} / key file ${key.file}: ${(err as Error).message}`);
    }
    return ctxOptions;
  };

  const serverOptions = pair('default', options.cert, options.key);
  const sni = new SniTable();
  for (const [pattern, files] of Object.entries(options.sni)) {
    const ctx: SecureContext = createSecureContext(pair(pattern, files.cert, files.key));
    sni.add(pattern, ctx);
  }
  return { serverOptions, sni, info, contents };
}

/** True when both generations were built from byte-identical files. */
export function sameFiles(a: LoadedCertificates, b: LoadedCertificates): boolean {
  if (a.contents.size !== b.contents.size) return false;
  for (const [file, data] of a.contents) {
    const other = b.contents.get(file);
    if (other === undefined || !other.equals(data)) return false;
  }
  return true;
}

/** Parses the first certificate of a PEM file (the leaf; the rest is the chain). */
function checkCertificate(file: string, data: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(data);
  } catch (err) {
    throw new Error(`${what} file ${file} holds no PEM certificate: ${(err as Error).message}`);
  }
}
