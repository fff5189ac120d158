import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { CertID, OCSPRequest, Request, TBSRequest } from '@peculiar/asn1-ocsp';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import knexFactory, { type Knex } from 'knex';
import { subjectPublicKeyBits } from '../ca/profiles.ts';
import { freePort } from '../test/support/cli.ts';
import { integerContents, load, rawRequest } from './http-load.ts';
import type { BenchResult } from './report.ts';
import { startBenchCa, type BenchCa } from './server-process.ts';

const CERTIFICATES = 10_000;
const CONNECTIONS = 32;

/** The name and key of a CA certificate, as CertIDs hash them. */
export function issuerOf(der: Uint8Array): { name: Buffer; key: Buffer } {
  const ca = new x509.X509Certificate(new Uint8Array(der));
  return { name: Buffer.from(ca.subjectName.toArrayBuffer()), key: subjectPublicKeyBits(Buffer.from(ca.publicKey.rawData)) };
}

/** A one-certificate request, CertID with SHA-1 and NULL parameters, as OpenSSL writes it. */
export function ocspRequest({ name: issuerName, key: issuerKey }: { name: Buffer; key: Buffer }, serialHex: string): Buffer {
  const sha1 = (data: Buffer) => createHash('sha1').update(data).digest();
  const certId = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: '1.3.14.3.2.26', parameters: new Uint8Array([5, 0]).buffer }),
    issuerNameHash: new OctetString(sha1(issuerName)), issuerKeyHash: new OctetString(sha1(issuerKey)),
    serialNumber: new Uint8Array(integerContents(serialHex)).buffer,
  });
  return Buffer.from(AsnConvert.serialize(new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: certId })] }) })));
}

/** Random positive 16-byte serials that start with 7: hex as the certificate store keeps them. */
export const SERIAL_SQL = `'7' || substr(md5(random()::text || g::text), 2, 31)`;

/**
 * Inserts `count` certificate rows for an issuer straight into PostgreSQL
 * (the benchmark needs volume, not real certificates: OCSP and CRLs read
 * only serial, status and validity); returns their serials.
 */
export async function seedCertificates(db: Knex, issuerId: number, count: number, revoked: boolean): Promise<void> {
  await db.raw(
    `insert into certificates (serial, kind, issuer_id, subject, der, sha256, key_sha256, not_before, not_after, revoked_at, revocation_reason, created_at)
     select serial, 'operational', ?, 'CN=bench', '\\x00'::bytea, md5(serial) || md5(serial || 'h'), md5(serial || 'k') || md5(serial || 'l'),
            now(), now() + interval '2 days', ${revoked ? "now() - (g % 86400) * interval '1 second'" : 'null'}, ${revoked ? "(array[0, 1, 3, 4, 5, 9])[1 + g % 6]" : 'null'}, now()
     from (select ${SERIAL_SQL} as serial, g from generate_series(1, ?) g) s`,
    [issuerId, count],
  );
}

async function activeIssuer(db: Knex, role: string): Promise<{ id: number; der: Buffer }> {
  return db('ca_certificates').select('id', 'der').where({ role, active: true }).first();
}

/** `openssl ocsp -index ... -port ...` over the same serials, for its own CA. */
async function peer(serials: string[], ms: number): Promise<{ rate: number; requests: Buffer[] } | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-ocsp-peer-'));
  const run = (args: string[]) => spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  try {
    run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
    if (run(['req', '-new', '-x509', '-key', 'ca.key', '-subj', '/CN=peer CA', '-days', '30', '-out', 'ca.pem']).status !== 0) return undefined;
    const expiry = '301231000000Z';
    writeFileSync(join(dir, 'index.txt'), serials.map((s) => `V\t${expiry}\t\t${s.toUpperCase()}\tunknown\t/CN=${s}\n`).join(''));
    const port = await freePort();
    const server = spawn('openssl', ['ocsp', '-index', 'index.txt', '-port', String(port), '-rsigner', 'ca.pem', '-rkey', 'ca.key', '-CA', 'ca.pem', '-ignore_err'], { cwd: dir, stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const issuer = issuerOf(Buffer.from(new x509.X509Certificate(run(['x509', '-in', 'ca.pem', '-outform', 'PEM']).stdout).rawData));
      const requests = serials.slice(0, 2000).map((s) => rawRequest('POST', '/', ocspRequest(issuer, s), true));
      const result = await load({ port, requests, connections: 8, keepAlive: false, ms });
      return { rate: result.rate, requests };
    } finally {
      server.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * OCSP responses per second from `devid-ca serve` for 10,000 issued
 * certificates: keep-alive GET and POST, and a new connection per request,
 * beside `openssl ocsp -index` answering the same serials (the peer; it
 * opens a connection per response). Server CPU per response too.
 */
export async function benchOcsp(ms: number): Promise<BenchResult[]> {
  const bench: BenchCa | undefined = await startBenchCa('postgres', 8);
  if (!bench) return [{ name: 'ocsp.get.keepalive', value: 0, unit: 'ops/s', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const db = knexFactory({ client: 'pg', connection: bench.env.DEVID_DATABASE_URL });
  try {
    const issuer = await activeIssuer(db, 'operational');
    await seedCertificates(db, issuer.id, CERTIFICATES, false);
    await db.raw(`insert into ocsp_responses (serial, issuer_id, not_after, updated_at) select serial, issuer_id, not_after, now() from certificates where subject = 'CN=bench'`);
    // The server's background signer makes their responses (two each, in the HSM).
    for (;;) {
      const { n } = await db('ocsp_responses').whereNull('sha1').count({ n: '*' }).first() as { n: string };
      if (Number(n) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const serials: string[] = (await db('certificates').select('serial').where({ subject: 'CN=bench' })).map((r: { serial: string }) => r.serial);
    const ours = issuerOf(issuer.der);
    const ders = serials.map((s) => ocspRequest(ours, s));
    const port = Number(bench.http.split(':')[1]);
    const gets = ders.map((der) => rawRequest('GET', `/ocsp/${encodeURIComponent(der.toString('base64'))}`));
    const posts = ders.map((der) => rawRequest('POST', '/ocsp', der));
    const closes = ders.map((der) => rawRequest('POST', '/ocsp', der, true));
    // Warm: every response read once from the database into the responder's memory (as the first request for each certificate does).
    await load({ port, requests: posts, connections: 8, keepAlive: true, ms: 60_000, count: posts.length });

    const peerRun = await peer(serials, ms);
    const peerFields = peerRun ? { peer: 'openssl ocsp', peerValue: Math.round(peerRun.rate) } : { note: 'peer openssl ocsp did not start' };
    const results: BenchResult[] = [];
    for (const [name, requests, keepAlive] of [['ocsp.get.keepalive', gets, true], ['ocsp.post.keepalive', posts, true], ['ocsp.post.newconn', closes, false]] as const) {
      const cpuBefore = bench.server.cpuMs();
      const started = performance.now();
      const run = await load({ port, requests, connections: keepAlive ? CONNECTIONS : 8, keepAlive, ms });
      const seconds = (performance.now() - started) / 1000;
      const responses = run.rate * seconds;
      results.push({ name, value: run.rate, unit: 'ops/s', ...peerFields, ...(run.errors ? { note: `${run.errors} errors` } : {}) });
      results.push({ name: `${name}.cpu`, value: ((bench.server.cpuMs() - cpuBefore) * 1000) / Math.max(1, responses), unit: 'µs/op' });
    }
    return results;
  } finally {
    await db.destroy();
    await bench.close();
  }
}
