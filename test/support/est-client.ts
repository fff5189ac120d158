import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect, type TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import type { TestServer } from './api.ts';
import { PUBLIC_HOST } from './acme-device.ts';

/**
 * An EST client written from RFC 7030 and RFC 9266, not from the server's
 * code: a TLS 1.3 session with an optional client certificate, the
 * session's tls-exporter for the CSR's challengePassword, and raw HTTP
 * requests on that session.
 */
export interface Credentials {
  keyPem: string;
  certPem: string;
}

export interface EstAnswer {
  status: number;
  type: string;
  text: string;
}

export interface EstSession {
  socket: TLSSocket;
  /** Padded base64 of the tls-exporter (RFC 9266: label EXPORTER-Channel-Binding, empty context, 32 bytes). */
  binding: string;
  request(method: string, path: string, body?: string | Buffer, headers?: Record<string, string>): Promise<EstAnswer>;
  close(): void;
}

export async function estSession(server: TestServer, credentials?: Credentials, maxVersion: 'TLSv1.3' | 'TLSv1.2' = 'TLSv1.3'): Promise<EstSession> {
  const socket = connect({
    host: '127.0.0.1', port: server.running.httpsPort, servername: PUBLIC_HOST, ca: server.rootPem, maxVersion, minVersion: maxVersion,
    ...(credentials ? { key: credentials.keyPem, cert: credentials.certPem } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const binding = socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)).toString('base64');
  // Plain HTTP/1.1 written on the TLS session already open (node:http with an agent that hands out this socket).
  const agent = new Agent();
  (agent as unknown as { createConnection: () => TLSSocket }).createConnection = () => socket;
  return {
    socket, binding,
    request: (method, path, body, headers = {}) => new Promise((resolve, reject) => {
      const req = request({ method, path, host: PUBLIC_HOST, port: server.running.httpsPort, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    }),
    close: () => socket.destroy(),
  };
}

/** A new P-256 key pair as PEM and as WebCrypto keys (for CSRs). */
export async function newKey(type: 'p256' | 'p521' | 'rsa1024' = 'p256'): Promise<{ keyPem: string; keys: CryptoKeyPair; signing: Algorithm }> {
  const { privateKey } = type === 'rsa1024'
    ? generateKeyPairSync('rsa', { modulusLength: 1024 })
    : generateKeyPairSync('ec', { namedCurve: type === 'p256' ? 'P-256' : 'P-521' });
  const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const publicSpki = (await import('node:crypto')).createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const algorithm = type === 'rsa1024'
    ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: type === 'p256' ? 'P-256' : 'P-521' };
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, true, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', publicSpki, algorithm, true, ['verify']),
  } as CryptoKeyPair;
  const signing = type === 'rsa1024' ? { name: 'RSASSA-PKCS1-v1_5' } : ({ name: 'ECDSA', hash: type === 'p256' ? 'SHA-256' : 'SHA-512' } as EcdsaParams);
  return { keyPem, keys, signing };
}

/** A PKCS#10 request as base64 DER with line breaks, carrying the challengePassword when given. */
export async function estCsr(key: { keys: CryptoKeyPair; signing: Algorithm }, options: { name?: string; challengePassword?: string; attributes?: x509.Attribute[] } = {}): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(options.name !== undefined ? { name: options.name } : {}),
    keys: key.keys, signingAlgorithm: key.signing,
    attributes: [...(options.challengePassword !== undefined ? [new x509.ChallengePasswordAttribute(options.challengePassword)] : []), ...(options.attributes ?? [])],
  });
  return `${Buffer.from(csr.rawData).toString('base64').replace(/.{64}/g, '$&\n')}\n`;
}

/** A device of the test server's factory line with its birth certificate and key, as PEM. */
export async function bornDevice(server: TestServer, serial: string, model = 'thermo-2'): Promise<Credentials> {
  const key = await newKey();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=device', keys: key.keys, signingAlgorithm: key.signing });
  const birth = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial, model, batch: 'est-1', csr: csr.toString('pem') } });
  if (birth.status !== 201) throw new Error(`birth certificate refused: ${birth.text}`);
  return { keyPem: key.keyPem, certPem: birth.json.certificate };
}

/**
 * The certificates of a certs-only CMS SignedData (RFC 5652 5.1), read with
 * asn1js by the ASN.1 alone: a parser other than the one that wrote it.
 */
export function certsOf(base64: string): X509Certificate[] {
  const parsed = asn1js.fromBER(Buffer.from(base64.replace(/\s+/g, ''), 'base64'));
  if (parsed.offset === -1) throw new Error('not BER');
  const contentInfo = parsed.result as asn1js.Sequence;
  const [contentType, content] = contentInfo.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.Constructed];
  if (contentType.valueBlock.toString() !== '1.2.840.113549.1.7.2') throw new Error(`content type ${contentType.valueBlock.toString()}`);
  const signedData = content.valueBlock.value[0] as asn1js.Sequence;
  const fields = signedData.valueBlock.value;
  const certificates = fields.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0) as asn1js.Constructed;
  const signerInfos = fields[fields.length - 1] as asn1js.Set;
  if (signerInfos.valueBlock.value.length !== 0) throw new Error('certs-only has no signers');
  return certificates.valueBlock.value.map((c) => new X509Certificate(Buffer.from(c.toBER())));
}
