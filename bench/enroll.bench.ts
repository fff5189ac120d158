import { createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { FlattenedSign, flattenedVerify } from 'jose';
import { AcmeClient } from '../client/acme-client.ts';
import { buildAttestation } from '../client/attestation.ts';
import { Device } from '../client/device.ts';
import { fileFactoryKey } from '../client/factory-key.ts';
import { KeyCeremony, createHierarchy } from '../ca/hierarchy.ts';
import { encodeCertificate, encodeTbsCertificate } from '../ca/certificate-der.ts';
import { lintProfile } from '../ca/lint.ts';
import { certificatePem } from '../ca/pem.ts';
import { operationalProfile } from '../ca/profiles.ts';
import { randomSerial } from '../ca/serial.ts';
import { parseDeviceAttestation } from '../pki/attestation/devid.ts';
import { verifyCsr } from '../pki/csr.ts';
import type { Pkcs11KeyProvider } from '../hsm/pkcs11-provider.ts';
import { hsmCrypto } from '../hsm/webcrypto.ts';
import { migrate, openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { createTestDatabase } from '../test/support/databases.ts';
import type { BenchResult } from './report.ts';
import { pebbleAccounts, pebbleIssuances, startPebble } from './pebble.ts';
import { startBenchCa, type BenchCa } from './server-process.ts';
import { withSoftHsmToken } from './softhsm-token.ts';

const CONCURRENCY = [1, 8, 64];

/**
 * The floor: what one enrollment's cryptography and encoding cost with no
 * HTTP and no database, in this process: six JWS verifications on cached
 * keys, the attestation parsed and its signature verified, the CSR parsed
 * and verified, the certificate linted, encoded and signed in SoftHSM.
 */
async function floor(ms: number): Promise<{ rate: number; cpuMs: number }> {
  return withSoftHsmToken('enroll-floor', (provider) => floorWith(provider, ms));
}

async function floorWith(provider: Pkcs11KeyProvider, ms: number): Promise<{ rate: number; cpuMs: number }> {
  const database = await createTestDatabase('pglite');
  const db = openDatabase(database.location);
  try {
    await migrate(db, database.location);
    const store = new Store(db);
    const { hierarchy } = await store.transaction((tx) => createHierarchy(new KeyCeremony(provider), hsmCrypto(provider), tx, { organization: 'floor', baseUrl: 'http://pki.bench.test', now: new Date() }));
    const issuer = hierarchy.operational;
    const account = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify({ identifiers: [{ type: 'permanent-identifier', value: 'SN-1' }] })))
      .setProtectedHeader({ alg: 'ES256', nonce: 'x'.repeat(22), url: 'https://localhost/acme/new-order', kid: 'https://localhost/acme/acct/x' }).sign(account.privateKey);
    const factory = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const operational = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = createPublicKey(operational.privateKey).export({ format: 'der', type: 'spki' });
    const attObj = await buildAttestation({
      factoryKey: { coseAlg: -7, sign: async (data) => nodeSign('sha256', data, factory.privateKey) }, x5c: [Buffer.from(issuer.record.der)],
      keyAuthorization: 'token.thumbprint', rpId: 'localhost', newKeySpki: spki, signCount: 1,
    });
    const keys = { privateKey: await globalThis.crypto.subtle.importKey('pkcs8', operational.privateKey.export({ format: 'der', type: 'pkcs8' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), publicKey: await globalThis.crypto.subtle.importKey('spki', spki, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']) };
    const csr = Buffer.from((await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=SN-1', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } })).rawData).toString('base64url');
    const once = async () => {
      for (let i = 0; i < 6; i += 1) await flattenedVerify(jws, account.publicKey as KeyObject);
      const parsed = parseDeviceAttestation(attObj);
      nodeVerify('sha256', parsed.authData, factory.publicKey, parsed.sig);
      const checked = verifyCsr(csr);
      const profile = operationalProfile({ issuer, spki: checked.publicKey.spki, baseUrl: 'http://pki.bench.test', now: new Date() }, { serial: 'SN-1', trustDomain: 'localhost', ttlMs: 86_400_000, serverAuth: false, predecessorSha256: Buffer.alloc(32) });
      lintProfile(issuer, profile);
      const tbs = encodeTbsCertificate(issuer, profile, randomSerial());
      certificatePem(encodeCertificate(tbs, await issuer.signTbs(tbs)));
    };
    let done = 0;
    const started = process.cpuUsage();
    const deadline = performance.now() + ms;
    const t0 = performance.now();
    while (performance.now() < deadline) {
      await once();
      done += 1;
    }
    const elapsed = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(started);
    return { rate: done / elapsed, cpuMs: (used.user + used.system) / 1000 / done };
  } finally {
    await db.destroy();
    await database.drop();
  }
}

/** `count` devices with factory keys and birth certificates from the bench CA. */
export async function benchDevices(bench: BenchCa, count: number): Promise<Device[]> {
  const devices: Device[] = [];
  for (let i = 0; i < count; i += 1) {
    const dir = mkdtempSync(join(tmpdir(), 'devid-bench-device-'));
    const keyPath = join(dir, 'factory-key.pem');
    writeFileSync(keyPath, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const factoryKey = await fileFactoryKey(keyPath);
    const birth = await bench.call('POST', '/factory/v1/birth-certificates', bench.factoryToken, { serial: `SN-B${i}`, model: 'bench-1', batch: 'b', csr: await factoryKey.csr() });
    const device = new Device(`SN-B${i}`, dir, factoryKey, new AcmeClient(`${bench.origin}/acme/directory`, AcmeClient.generateAccountKey(), bench.ca, undefined, bench.agent), 'localhost');
    writeFileSync(device.path('birth'), String(birth.json.certificate));
    devices.push(device);
  }
  return devices;
}

const freshDevice = (bench: BenchCa, device: Device) =>
  new Device(device.serial, device.dir, device.factoryKey, new AcmeClient(`${bench.origin}/acme/directory`, AcmeClient.generateAccountKey(), bench.ca, undefined, bench.agent), 'localhost');

/**
 * Full enrollments (newOrder, authorization, challenge, finalize, download)
 * from `concurrency` devices for about `ms`: completed and failed counts, and
 * the seconds taken. Each device keeps one ACME account, as ACME clients do;
 * `newAccountEach` makes a new one (directory, newNonce, newAccount) per enrollment.
 */
export async function enrollFor(bench: BenchCa, devices: readonly Device[], concurrency: number, ms: number, newAccountEach = false): Promise<{ done: number; errors: number; seconds: number }> {
  let done = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(devices.slice(0, concurrency).map(async (device) => {
    let kept = freshDevice(bench, device);
    while (performance.now() < deadline) {
      if (newAccountEach) kept = freshDevice(bench, device);
      try {
        await kept.enroll({ keepFiles: true });
        done += 1;
      } catch {
        errors += 1;
      }
    }
  }));
  return { done, errors, seconds: (performance.now() - started) / 1000 };
}

/** Server CPU per ACME account created (directory, newNonce, newAccount), from `concurrency` callers for about `ms`. */
async function accountsFor(bench: BenchCa, concurrency: number, ms: number): Promise<{ done: number; cpuMs: number }> {
  let done = 0;
  const before = bench.server.cpuMs();
  const deadline = performance.now() + ms;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      const client = new AcmeClient(`${bench.origin}/acme/directory`, AcmeClient.generateAccountKey(), bench.ca, undefined, bench.agent);
      await client.init();
      await client.newAccount();
      done += 1;
    }
  }));
  return { done, cpuMs: (bench.server.cpuMs() - before) / Math.max(1, done) };
}

/** Pebble's server CPU per issuance at each concurrency and per account, measured in this run; undefined where Pebble is not installed. */
interface PeerFigures {
  issuance: Map<number, number>;
  account: number;
}

async function pebbleFigures(ms: number): Promise<PeerFigures | undefined> {
  const peer = await startPebble();
  if (!peer) return undefined;
  try {
    const issuance = new Map<number, number>();
    for (const concurrency of CONCURRENCY) issuance.set(concurrency, (await pebbleIssuances(peer, concurrency, ms)).cpuMs);
    return { issuance, account: (await pebbleAccounts(peer, 8, ms)).cpuMs };
  } finally {
    await peer.stop();
  }
}

const PEER = 'pebble';
const SKIPPED_PEER = 'pebble not installed (apt-get install pebble): no peer ratio';

async function benchOn(kind: 'pglite' | 'postgres', ms: number, base: { rate: number; cpuMs: number }, peer: PeerFigures | undefined): Promise<BenchResult[]> {
  const bench = await startBenchCa(kind, 128);
  if (!bench) return [{ name: 'enroll.acme.postgres', value: 0, unit: 'ops/s', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const results: BenchResult[] = [];
  const against = (value: number | undefined) => (value === undefined ? {} : { peer: PEER, peerValue: value });
  try {
    const devices = await benchDevices(bench, Math.max(...CONCURRENCY));
    for (const concurrency of CONCURRENCY) {
      const cpuBefore = bench.server.cpuMs();
      const { done, errors, seconds } = await enrollFor(bench, devices, concurrency, ms);
      const cpu = (bench.server.cpuMs() - cpuBefore) / Math.max(1, done);
      const note = errors > 0 ? `${errors} failed` : peer ? undefined : SKIPPED_PEER;
      const rss = `server RSS ${bench.server.rssMiB().filter((m) => m > 0).map((m) => m.toFixed(0)).join('+')} MiB`;
      results.push({ name: `enroll.acme.c${concurrency}.${kind}`, value: done / seconds, unit: 'ops/s', floor: base.rate, note: errors > 0 ? `${errors} failed, ${rss}` : rss });
      results.push({ name: `enroll.acme.cpu.c${concurrency}.${kind}`, value: cpu, unit: 'ms/op', floor: base.cpuMs, ...against(peer?.issuance.get(concurrency)), ...(note ? { note } : {}) });
    }
    const accounts = await accountsFor(bench, 8, ms);
    results.push({ name: `acme.account.cpu.${kind}`, value: accounts.cpuMs, unit: 'ms/op', ...against(peer?.account), ...(peer ? {} : { note: SKIPPED_PEER }) });
    for (const device of devices) rmSync(device.dir, { recursive: true, force: true });
  } finally {
    await bench.close();
  }
  return results;
}

/**
 * Full device enrollments over HTTPS against `devid-ca serve` in its own
 * process (so its CPU is read apart from the clients'), at 1, 8 and 64
 * concurrent devices, on PGlite and PostgreSQL, beside the in-process floor
 * and Pebble (Let's Encrypt's test CA) measured in the same run.
 */
export async function benchEnroll(ms: number): Promise<BenchResult[]> {
  const base = await floor(Math.min(ms, 2000));
  const peer = await pebbleFigures(ms);
  // DEVID_BENCH_DATABASES=postgres runs one database only (profiling).
  const kinds = (process.env.DEVID_BENCH_DATABASES ?? 'pglite,postgres').split(',') as Array<'pglite' | 'postgres'>;
  const results: BenchResult[] = [];
  for (const kind of kinds) results.push(...(await benchOn(kind, ms, base, peer)));
  return results;
}
