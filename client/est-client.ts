import { createPrivateKey, generateKeyPairSync, sign as nodeSign, webcrypto, X509Certificate } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect, type TLSSocket } from 'node:tls';
import { ContentInfo, SignedData } from '@peculiar/asn1-cms';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/x509';
import { buildAttestation } from './attestation.ts';
import { attestationStatement, ID_AA_ATTESTATION } from './est-attributes.ts';

/**
 * A small EST client (RFC 7030) for the reference device and gateway: one
 * TLS 1.3 session with a client certificate, the session's tls-exporter
 * (RFC 9266) for the CSR's challengePassword, requests on that session.
 */
export interface EstCredentials {
  keyPem: string;
  /** The client certificate, leaf first (its issuers may follow). */
  certPem: string;
}

export class EstError extends Error {
  override readonly name = 'EstError';
  constructor(readonly status: number, readonly reason: string) {
    super(`the CA refused (${status}): ${reason.trim()}`);
  }
}

export interface EstSession {
  /** Padded base64 of the session's tls-exporter. */
  binding: string;
  request(method: string, path: string, body?: string, type?: string): Promise<{ status: number; type: string; text: string }>;
  close(): void;
}

/** `base`: https://host:port/.well-known/est/<label> (the label optional). */
export async function estSession(base: URL, ca: string, credentials?: EstCredentials): Promise<EstSession> {
  const port = Number(base.port || 443);
  const socket: TLSSocket = connect({
    host: base.hostname, port, servername: base.hostname, ca, minVersion: 'TLSv1.3',
    ...(credentials ? { key: credentials.keyPem, cert: credentials.certPem } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const binding = socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)).toString('base64');
  // Kept alive: every request of the session goes over this one socket (cacerts after an enrollment too).
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: () => TLSSocket }).createConnection = () => socket;
  return {
    binding,
    request: (method, path, body, type) => new Promise((resolve, reject) => {
      const req = request({ method, path, host: base.hostname, port, agent, headers: type ? { 'content-type': type } : {} }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type'] ?? ''), text }));
      });
      req.on('error', reject);
      req.end(body);
    }),
    close: () => socket.destroy(),
  };
}

/** The certificates of a base64 certs-only CMS (RFC 7030 4.1.3, 4.2.3). */
export function certsOf(base64: string): X509Certificate[] {
  const info = AsnConvert.parse(Buffer.from(base64.replace(/\s+/g, ''), 'base64'), ContentInfo);
  const signed = AsnConvert.parse(info.content, SignedData);
  return (signed.certificates ?? []).flatMap((c) => (c.certificate ? [new X509Certificate(Buffer.from(AsnConvert.serialize(c.certificate)))] : []));
}

/** A new P-256 key: PEM, and WebCrypto keys for its CSR. */
export async function newKey(): Promise<{ keyPem: string; spki: Buffer; keys: CryptoKeyPair }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, algorithm, true, ['verify']),
  } as CryptoKeyPair;
  return { keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), spki, keys };
}

/** A CSR naming the serial (CN), with a challengePassword and an attestation when given: base64 DER, as EST posts it. */
export async function estCsr(serial: string, key: { keys: CryptoKeyPair }, options: { challengePassword?: string; attObj?: Buffer } = {}): Promise<string> {
  const attributes: x509.Attribute[] = [];
  if (options.challengePassword !== undefined) attributes.push(new x509.ChallengePasswordAttribute(options.challengePassword));
  if (options.attObj) attributes.push(new x509.Attribute(ID_AA_ATTESTATION, [new Uint8Array(attestationStatement(options.attObj)).buffer]));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${serial}`, keys: key.keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, attributes });
  return `${Buffer.from(csr.rawData).toString('base64').replace(/.{64}/g, '$&\n')}\n`;
}

/** The device's own attestation over the session's binding, reporting its firmware (the CA's check 5 over EST). */
export async function ownAttestation(input: { factoryKeyPem: string; birthPem: string; binding: string; rpId: string; spki: Buffer; signCount: number; firmware: { version: string; digest: Buffer } }): Promise<Buffer> {
  const factoryKey = createPrivateKey(input.factoryKeyPem);
  return buildAttestation({
    factoryKey: { coseAlg: -7, sign: async (data) => nodeSign('sha256', data, factoryKey) },
    x5c: [new X509Certificate(input.birthPem).raw], keyAuthorization: input.binding, rpId: input.rpId,
    newKeySpki: input.spki, signCount: input.signCount, firmware: input.firmware,
  });
}

/**
 * One enrollment: a session with the client certificate, a CSR for a new
 * key (bound to the session, or not for a gateway's CSR), POST to the
 * operation; the new certificate, its key, and the CA's chain above it.
 */
export async function estEnroll(base: URL, ca: string, client: EstCredentials, serial: string, operation: 'simpleenroll' | 'simplereenroll', options: {
  bind: boolean; attest?: (binding: string, spki: Buffer) => Promise<Buffer>; challengePassword?: string;
}): Promise<{ certificate: X509Certificate; keyPem: string; chainPem: string }> {
  const key = await newKey();
  const session = await estSession(base, ca, client);
  try {
    const attObj = options.attest ? await options.attest(session.binding, key.spki) : undefined;
    const password = options.bind ? session.binding : options.challengePassword;
    const csr = await estCsr(serial, key, { ...(password !== undefined ? { challengePassword: password } : {}), ...(attObj ? { attObj } : {}) });
    const answer = await session.request('POST', `${base.pathname.replace(/\/+$/, '')}/${operation}`, csr, 'application/pkcs10');
    if (answer.status !== 200) throw new EstError(answer.status, answer.text);
    const [certificate] = certsOf(answer.text);
    if (!certificate) throw new EstError(answer.status, 'the answer carries no certificate');
    const cacerts = await session.request('GET', `${base.pathname.replace(/\/+$/, '')}/cacerts`);
    const issuers = cacerts.status === 200 ? certsOf(cacerts.text).filter((c) => c.subject !== c.issuer) : [];
    return { certificate, keyPem: key.keyPem, chainPem: [certificate, ...issuers].map((c) => c.toString()).join('') };
  } finally {
    session.close();
  }
}

/** A gateway's nonce for a device behind it (POST <base>/nonce {"serial"}). */
export async function gatewayNonce(base: URL, ca: string, gateway: EstCredentials, serial: string): Promise<string> {
  const session = await estSession(base, ca, gateway);
  try {
    const answer = await session.request('POST', `${base.pathname.replace(/\/+$/, '')}/nonce`, JSON.stringify({ serial }), 'application/json');
    if (answer.status !== 200) throw new EstError(answer.status, answer.text);
    return (JSON.parse(answer.text) as { nonce: string }).nonce;
  } finally {
    session.close();
  }
}
