import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicOCSPResponse, OCSPResponse } from '@peculiar/asn1-ocsp';
import * as x509 from '@peculiar/x509';
import { subjectPublicKeyBits } from '../../ca/profiles.ts';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** The root CA certificate (PEM) as a serving CA publishes it on its plain-HTTP listener. */
export async function rootPemOf(httpPort: number): Promise<string> {
  return new X509Certificate((await httpRequest(httpPort, 'GET', '/ca/root.crt')).body).toString();
}

/** One plain-HTTP request to the publication listener, sent exactly as given. */
export function httpRequest(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function inDir<T>(files: Record<string, string | Buffer>, work: (paths: Record<string, string>) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'devid-test-ocsp-'));
  try {
    const paths: Record<string, string> = { dir };
    for (const [name, content] of Object.entries(files)) {
      paths[name] = join(dir, name);
      writeFileSync(paths[name]!, content);
    }
    return await work(paths);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface OpensslResult {
  ok: boolean;
  output: string;
}

/** Runs openssl without blocking the event loop: the server under test answers it from this process. */
function openssl(args: string[]): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ ok: code === 0, output }));
  });
}

/**
 * `openssl ocsp` as a relying party: asks the responder at `url` about a
 * certificate (or a bare serial) of `issuerPem`, with a SHA-1 or SHA-256
 * CertID, and checks the response signature against the issuer.
 */
export function opensslOcsp(options: { issuerPem: string; rootPem: string; url: string; certPem?: string; serial?: string; digest?: 'sha1' | 'sha256' }): Promise<OpensslResult> {
  return inDir({ 'issuer.pem': options.issuerPem, 'root.pem': options.rootPem, 'cert.pem': options.certPem ?? '' }, async (p) => {
    const args = ['ocsp', '-issuer', p['issuer.pem']!, '-CAfile', p['root.pem']!, '-url', options.url, '-no_nonce', '-timeout', '10'];
    if (options.digest === 'sha256') args.push('-sha256');
    if (options.certPem) args.push('-cert', p['cert.pem']!);
    if (options.serial) args.push('-serial', `0x${options.serial}`);
    return await openssl(args);
  });
}

/** A DER OCSP request as `openssl ocsp -reqout` writes it. */
export function opensslOcspRequest(issuerPem: string, certPem: string, digest: 'sha1' | 'sha256' = 'sha1', nonce = false): Promise<Buffer> {
  return inDir({ 'issuer.pem': issuerPem, 'cert.pem': certPem }, async (p) => {
    const out = join(p.dir!, 'req.der');
    const args = ['ocsp', '-issuer', p['issuer.pem']!, ...(digest === 'sha256' ? ['-sha256'] : []), '-cert', p['cert.pem']!, '-reqout', out, ...(nonce ? [] : ['-no_nonce'])];
    const result = await openssl(args);
    if (!result.ok) throw new Error(result.output);
    return readFileSync(out);
  });
}

/** `openssl ocsp -respin`: the text of a DER response, checked against the issuer. */
export function opensslOcspResponse(response: Buffer, issuerPem: string, rootPem: string, certPem: string, digest: 'sha1' | 'sha256' = 'sha1'): Promise<OpensslResult> {
  return inDir({ 'resp.der': response, 'issuer.pem': issuerPem, 'root.pem': rootPem, 'cert.pem': certPem }, async (p) =>
    openssl(['ocsp', '-respin', p['resp.der']!, '-issuer', p['issuer.pem']!, '-CAfile', p['root.pem']!, ...(digest === 'sha256' ? ['-sha256'] : []), '-cert', p['cert.pem']!, '-resp_text']));
}

/** `openssl crl -CAfile`: the CRL's signature checked against its issuer, and its text. */
export function opensslCrl(crlDer: Buffer, caPems: string): Promise<OpensslResult> {
  return inDir({ 'crl.der': crlDer, 'ca.pem': caPems }, async (p) =>
    openssl(['crl', '-inform', 'DER', '-in', p['crl.der']!, '-CAfile', p['ca.pem']!, '-noout', '-text']));
}

/** `openssl verify -crl_check` of a leaf against the root, its issuer and the issuer's CRL. */
export function opensslVerifyWithCrl(rootPem: string, issuerPem: string, crlDer: Buffer, leafPem: string): Promise<OpensslResult> {
  return inDir({ 'crl.der': crlDer, 'root.pem': rootPem, 'issuer.pem': issuerPem, 'leaf.pem': leafPem }, async (p) => {
    const crlPem = join(p.dir!, 'crl.pem');
    const converted = await openssl(['crl', '-inform', 'DER', '-in', p['crl.der']!, '-out', crlPem]);
    if (!converted.ok) return converted;
    return openssl(['verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', p['root.pem']!, '-untrusted', p['issuer.pem']!, p['leaf.pem']!]);
  });
}

/** A CA certificate's name and key as CertIDs hash them with SHA-1 (RFC 6960 4.1.1). */
export function issuerHashes(caPem: string): { nameHash: Buffer; keyHash: Buffer } {
  const ca = new x509.X509Certificate(caPem);
  const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest();
  return { nameHash: sha1(new Uint8Array(ca.subjectName.toArrayBuffer())), keyHash: sha1(subjectPublicKeyBits(new Uint8Array(ca.publicKey.rawData))) };
}

/** The BasicOCSPResponse inside a successful OCSPResponse, and its ResponseData as signed. */
export function basicOcspResponse(der: Buffer): { basic: BasicOCSPResponse; tbs: Buffer } {
  const response = AsnConvert.parse(der, OCSPResponse);
  if (!response.responseBytes) throw new Error(`OCSP response status ${response.responseStatus}`);
  const basic = AsnConvert.parse(response.responseBytes.response.buffer, BasicOCSPResponse);
  return { basic, tbs: Buffer.from(AsnConvert.serialize(basic.tbsResponseData)) };
}
