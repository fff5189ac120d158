import * as x509 from '@peculiar/x509';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { AcmeClient } from '../../client/acme-client.ts';
import { Device } from '../../client/device.ts';
import { fileFactoryKey } from '../../client/factory-key.ts';
import { sha256Hex } from '../../ca/digest.ts';
import { cli, startServer } from '../../bench/server-process.ts';
import { PUBLIC_HOST, toLoopback } from '../support/acme-device.ts';
import { freePort } from '../support/cli.ts';
import { createTestDatabase } from '../support/databases.ts';
import { httpsRequest } from '../support/https.ts';
import { opensslOcsp } from '../support/publication.ts';

/**
 * `npm run soak` (DEVID_SOAK_SECONDS, default 600): 64 devices enroll and
 * renew without pause against `serve --workers 2` on PostgreSQL, while a
 * third client revokes superseded certificates and asks OCSP about random
 * ones; a third of the way in one worker is killed with -9, two thirds in
 * PostgreSQL is restarted. Then it reports, and checks the database: every
 * certificate a device received is stored, in its history and in OCSP; none
 * twice; every predecessor link intact; the audit chain verifies.
 */
const SECONDS = Number(process.env.DEVID_SOAK_SECONDS ?? 600);
const DEVICES = 64;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const childPids = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
const hex = (value: unknown) => (typeof value === 'string' ? value : Buffer.from(value as Uint8Array).toString('hex'));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

function restartPostgres(): string {
  const version = spawnSync('sh', ['-c', 'ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1'], { encoding: 'utf8' }).stdout.trim();
  if (!version) return 'skipped: no local PostgreSQL cluster to restart';
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart']);
  return `PostgreSQL ${version} restarted`;
}

const database = await createTestDatabase('postgres');
const dir = mkdtempSync(join(tmpdir(), 'devid-soak-'));
const port = await freePort();
const env = {
  DEVID_DATA_DIR: dir, DEVID_DATABASE_URL: database.url!, DEVID_LISTEN: `127.0.0.1:${port}`, DEVID_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
  DEVID_PUBLIC_HOST: PUBLIC_HOST, DEVID_ACME_ANONYMOUS_RATE: '100000', DEVID_HTTP_BASE_URL: 'http://pki.soak.test',
};
cli(['init'], env);
const token = (...args: string[]) => (JSON.parse(cli(['token', 'create', ...args, '--json'], env)) as { token: string }).token;
const factory = token('--role', 'factory', '--line', 'soak');
const operator = token('--role', 'operator');
const server = await startServer(env, ['--workers', '2']);
const rootPem = new x509.X509Certificate(new Uint8Array(await (await fetch(`http://${env.DEVID_HTTP_LISTEN}/ca/root.crt`)).arrayBuffer())).toString('pem');
const operationalPem = new x509.X509Certificate(new Uint8Array(await (await fetch(`http://${env.DEVID_HTTP_LISTEN}/ca/operational.crt`)).arrayBuffer())).toString('pem');
const agent = new Agent({ keepAlive: true, maxSockets: 128, ca: rootPem, lookup: toLoopback });
const api = (method: string, path: string, body?: unknown) => httpsRequest(port, rootPem, method, path,
  { authorization: `Bearer ${operator}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body === undefined ? undefined : JSON.stringify(body));
await api('PUT', '/operator/v1/models/soak-1', { hwType: '1.3.6.1.4.1.99999.10', manufacturer: 'Soak' });

const devices: Device[] = [];
for (let i = 0; i < DEVICES; i += 1) {
  const deviceDir = join(dir, `device-${i}`);
  const keyPath = join(dir, `factory-${i}.pem`);
  writeFileSync(keyPath, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const factoryKey = await fileFactoryKey(keyPath);
  const born = await httpsRequest(port, rootPem, 'POST', '/factory/v1/birth-certificates', { authorization: `Bearer ${factory}`, 'content-type': 'application/json' },
    JSON.stringify({ serial: `SOAK-${i}`, model: 'soak-1', batch: 'soak', csr: await factoryKey.csr() }));
  if (born.status !== 201) throw new Error(`birth refused: ${born.text}`);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(deviceDir, { recursive: true });
  const device = new Device(`SOAK-${i}`, deviceDir, factoryKey, new AcmeClient(`https://${PUBLIC_HOST}:${port}/acme/directory`, AcmeClient.generateAccountKey(), rootPem, toLoopback, agent), PUBLIC_HOST);
  writeFileSync(device.path('birth'), born.json.certificate);
  devices.push(device);
}

const workersAtStart = childPids(server.pid);
const memoryAtStart = Object.fromEntries([server.pid, ...workersAtStart].map((pid) => [pid, rssMiB(pid)]));
const received: Array<{ device: string; serial: string; pem: string }> = [];
const latencies: number[] = [];
const errors: Record<string, number> = {};
const counted = (kind: string) => { errors[kind] = (errors[kind] ?? 0) + 1; };
let ocspQueries = 0;
let revocations = 0;
const events: string[] = [];
const started = Date.now();
const deadline = started + SECONDS * 1000;

const deviceLoop = async (device: Device) => {
  while (Date.now() < deadline) {
    const t0 = performance.now();
    try {
      const result = await device.enroll();
      latencies.push(performance.now() - t0);
      received.push({ device: device.serial, serial: result.certificate.serialNumber.toLowerCase(), pem: result.certificate.toString('pem') });
    } catch (err) {
      const status = (err as { status?: number }).status;
      const type = (err as { problem?: { type?: string } }).problem?.type;
      counted(status ? `${status} ${type ?? ''}`.trim() : (err as Error).message.split('\n')[0]!.slice(0, 60));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
};
// The third client: revokes a superseded certificate and asks OCSP about a random one, in turn.
const operatorLoop = async () => {
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const pick = received[Math.floor(Math.random() * Math.max(1, received.length - DEVICES))];
    if (!pick) continue;
    try {
      const revoked = await api('POST', `/operator/v1/certificates/${pick.serial}/revoke`, { reason: 'superseded' });
      if (revoked.status === 200) revocations += 1;
      else counted(`revoke ${revoked.status}`);
      const answer = await opensslOcsp({ issuerPem: operationalPem, rootPem, url: `http://${env.DEVID_HTTP_LISTEN}/ocsp`, certPem: pick.pem });
      ocspQueries += 1;
      if (!/: revoked/.test(answer.output) && revoked.status === 200) counted('OCSP did not say revoked after a revocation');
    } catch (err) {
      counted(`operator: ${(err as Error).message.slice(0, 60)}`);
    }
  }
};
const faults = async () => {
  await new Promise((resolve) => setTimeout(resolve, (SECONDS * 1000) / 3));
  const victim = childPids(server.pid)[0]!;
  process.kill(victim, 'SIGKILL');
  events.push(`${Math.round((Date.now() - started) / 1000)} s: worker ${victim} killed with -9`);
  await new Promise((resolve) => setTimeout(resolve, (SECONDS * 1000) / 3));
  events.push(`${Math.round((Date.now() - started) / 1000)} s: ${restartPostgres()}`);
};
await Promise.all([...devices.map(deviceLoop), operatorLoop(), faults()]);
const seconds = (Date.now() - started) / 1000;
// Let the servers chain any pending events before the checks read the log.
await new Promise((resolve) => setTimeout(resolve, 3000));
const workersAtEnd = childPids(server.pid);
const memoryAtEnd = Object.fromEntries([server.pid, ...workersAtEnd].map((pid) => [pid, rssMiB(pid)]));

const db = knexFactory({ client: 'pg', connection: database.url!, pool: { min: 0, max: 2 } });
const problems: string[] = [];
try {
  const stored = new Map((await db('certificates').select('serial', 'sha256', 'predecessor_sha256', 'device_serial', 'kind')).map((r) => [String(r.serial), r]));
  const ocsp = new Set((await db('ocsp_responses').select('serial')).map((r) => String(r.serial)));
  const bySha = new Map([...stored.values()].map((r) => [hex(r.sha256), r]));
  const serials = new Set<string>();
  for (const got of received) {
    if (serials.has(got.serial)) problems.push(`certificate ${got.serial} received twice`);
    serials.add(got.serial);
    const row = stored.get(got.serial);
    if (!row) { problems.push(`certificate ${got.serial} received by ${got.device} is not stored`); continue; }
    if (sha256Hex(Buffer.from(new x509.X509Certificate(got.pem).rawData)) !== hex(row.sha256)) problems.push(`certificate ${got.serial}: stored bytes differ`);
    if (!ocsp.has(got.serial)) problems.push(`certificate ${got.serial} has no OCSP row`);
    const predecessor = row.predecessor_sha256 ? bySha.get(hex(row.predecessor_sha256)) : undefined;
    if (!predecessor || predecessor.device_serial !== got.device) problems.push(`certificate ${got.serial}: predecessor link broken`);
  }
  const forks = await db('certificates').whereNotNull('predecessor_sha256').groupBy('predecessor_sha256').havingRaw('count(*) > 1').select('predecessor_sha256');
  if (forks.length > 0) problems.push(`${forks.length} certificates with two successors`);
  for (const device of devices.slice(0, 8)) {
    const history = await api('GET', `/audit/v1/devices/${device.serial}/history`);
    const inHistory = new Set((history.json.certificates as Array<{ serial: string }>).map((c) => c.serial));
    for (const got of received.filter((r) => r.device === device.serial)) if (!inHistory.has(got.serial)) problems.push(`certificate ${got.serial} missing from the history of ${device.serial}`);
  }
} finally {
  await db.destroy();
}
const verify = spawnSync(process.execPath, [join(import.meta.dirname, '../../bin/devid-ca'), 'audit', 'verify', '--json'], { env: { ...process.env, ...env }, encoding: 'utf8' });
const verified = verify.status === 0 && (JSON.parse(verify.stdout) as { ok: boolean }).ok;
if (!verified) problems.push(`audit verify failed: ${verify.stdout}${verify.stderr}`);

const sorted = [...latencies].sort((a, b) => a - b);
const report = {
  seconds: Math.round(seconds), devices: DEVICES, enrollments: received.length, perSecond: Math.round((received.length / seconds) * 10) / 10,
  p50ms: Math.round(percentile(sorted, 50)), p99ms: Math.round(percentile(sorted, 99)), errors, revocations, ocspQueries, events,
  memoryMiB: { start: memoryAtStart, end: memoryAtEnd }, problems: problems.slice(0, 20), problemCount: problems.length,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
agent.destroy();
await server.stop();
await database.drop();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(problems.length === 0 ? 'soak: nothing lost, nothing duplicated, every link intact, the chain verifies\n' : 'soak: FAILED\n');
process.exit(problems.length === 0 ? 0 : 1);
