/**
 * TLS for the streaming server, as containerd's CRI plugin has it
 * (`enable_tls_streaming`, `x509_key_pair_streaming`): a key pair from PEM
 * files, checked at start so a bad one stops the daemon with its reason, or
 * without files a self-signed certificate made at start for the names
 * clients dial. crictl's streaming client does not verify it; the kubelet
 * (1.20 on) does, against the node's CAs, and refuses a self-signed one
 * (README, "The streaming server").
 *
 * node:crypto can check certificates and keys but not make a certificate;
 * the one made here comes from the `openssl` command (see the README for
 * why not an npm library).
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { IsulaError } from '@isula/core';

/** How the streaming server gets its certificate: PEM files, or one made at start. */
export type StreamTls = { certFile: string; keyFile: string } | { selfSigned: true };

export interface TlsKeyPair {
  /** PEM: the certificate, then any intermediates, as served. */
  cert: string;
  /** PEM private key. */
  key: string;
  certificate: X509Certificate;
}

/** As k8s.io/client-go's GenerateSelfSignedCertKey, which containerd uses: one year. */
export const SELF_SIGNED_DAYS = 365;
const OPENSSL_TIMEOUT_MS = 15_000;

/**
 * Reads and checks `streamTlsCert`/`streamTlsKey`. Throws PLUGIN_OPTIONS_INVALID
 * naming the option, the file and what is wrong: unreadable, not PEM, an
 * encrypted key, or a key that is not the certificate's.
 */
export async function loadKeyPair(certFile: string, keyFile: string): Promise<TlsKeyPair> {
  const cert = await readPem('streamTlsCert', certFile);
  const key = await readPem('streamTlsKey', keyFile);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw bad(`"streamTlsCert" ${certFile} holds no PEM certificate (${(err as Error).message})`, err);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw bad(`"streamTlsKey" ${keyFile} holds no unencrypted PEM private key (${(err as Error).message})`, err);
  }
  if (privateKey.asymmetricKeyType !== certificate.publicKey.asymmetricKeyType || !certificate.checkPrivateKey(privateKey)) {
    throw bad(`"streamTlsKey" ${keyFile} is not the key of the certificate in "streamTlsCert" ${certFile}`);
  }
  return { cert, key, certificate };
}

async function readPem(option: string, file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw bad(`"${option}" ${file} cannot be read: ${why}`, err);
  }
}

/**
 * The names a self-signed certificate is for: the host of the URLs handed
 * out (an IP address), the configured host when it is a DNS name, and for a
 * wildcard bind (0.0.0.0, ::) every interface address and the host name, as
 * containerd's.
 */
export function certificateNames(configuredHost: string, urlHost: string): string[] {
  const names = new Set<string>([urlHost]);
  if (net.isIP(configuredHost) === 0) names.add(configuredHost);
  if (configuredHost === '0.0.0.0' || configuredHost === '::') {
    for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) names.add(a.address);
    if (isDnsName(os.hostname())) names.add(os.hostname());
  }
  return [...names];
}

function isDnsName(name: string): boolean {
  return name.length <= 253 && /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(name);
}

/**
 * A self-signed certificate (ECDSA P-256, SHA-256, not a CA, server auth,
 * `SELF_SIGNED_DAYS` days) whose subjectAltName lists `names` (IP addresses
 * as IP entries, the rest as DNS). The key comes back on openssl's stdout and
 * never touches the disk; the request's config goes through a private
 * temporary file, so the host's openssl.cnf plays no part.
 */
export async function selfSignedKeyPair(names: string[]): Promise<TlsKeyPair> {
  let ip = 0;
  let dns = 0;
  const alt = names.map((n) => {
    if (net.isIP(n) !== 0) return `IP.${++ip} = ${n}`;
    if (!isDnsName(n)) throw bad(`"streamAddress" host ${JSON.stringify(n)} is neither an IP address nor a DNS name a certificate can hold`);
    return `DNS.${++dns} = ${n}`;
  });
  const config = [
    '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = ext',
    '[dn]', 'CN = isulad CRI streaming server',
    '[ext]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth', 'subjectKeyIdentifier = hash', 'subjectAltName = @alt',
    '[alt]', ...alt, '',
  ].join('\n');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'isula-cri-tls-'));
  try {
    const cnf = path.join(dir, 'req.cnf');
    await fs.writeFile(cnf, config, { mode: 0o600 });
    const argv = ['openssl', 'req', '-x509', '-config', cnf, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-sha256', '-days', String(SELF_SIGNED_DAYS), '-keyout', '-', '-out', '-'];
    const out = await openssl(argv);
    const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/.exec(out)?.[0];
    const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(out)?.[0];
    if (key === undefined || cert === undefined) throw new IsulaError('INTERNAL', `${argv.join(' ')} printed no key and certificate`, { details: { argv } });
    return { cert, key, certificate: new X509Certificate(cert) };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function openssl(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: OPENSSL_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) { resolve(stdout); return; }
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const why = missing ? 'the openssl command is not installed' : stderr.trim() || err.message;
      reject(bad(`"streamTls" without "streamTlsCert"/"streamTlsKey" makes a self-signed certificate with openssl, which failed: ${why}${missing ? ' (install openssl, or give a key pair)' : ''}`, err, { argv }));
    });
  });
}

function bad(message: string, cause?: unknown, details?: Record<string, unknown>): IsulaError {
  return new IsulaError('PLUGIN_OPTIONS_INVALID', `@isula/cri: ${message}`, { ...(cause !== undefined && { cause }), ...(details !== undefined && { details }) });
}
