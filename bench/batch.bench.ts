import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import knexFactory from 'knex';
import { fileFactoryKey } from '../client/factory-key.ts';
import { seedFleet } from './fleet.ts';
import { load, rawRequest } from './http-load.ts';
import { issuerOf, ocspRequest } from './ocsp.bench.ts';
import type { BenchResult } from './report.ts';
import { startBenchCa } from './server-process.ts';

const DEVICES = Number(process.env.DEVID_BENCH_BATCH_DEVICES ?? 100_000);

/**
 * A compromised batch of 100,000 devices, each with a birth and an
 * operational certificate, revoked through the operator API: the time until
 * the revocation reports finished (every certificate revoked, audited, its
 * OCSP responses signed again), and, while it runs, OCSP answers per second
 * and birth certificates for another batch: the server keeps serving.
 */
export async function benchBatch(): Promise<BenchResult[]> {
  const bench = await startBenchCa('postgres', 4);
  if (!bench) return [{ name: 'batch.revoke.seconds', value: 0, unit: 's', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const db = knexFactory({ client: 'pg', connection: bench.env.DEVID_DATABASE_URL });
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-batch-'));
  try {
    const issuers = Object.fromEntries((await db('ca_certificates').select('id', 'role', 'der').where({ active: true })).map((r: { id: number; role: string; der: Buffer }) => [r.role, r]));
    await seedFleet(db, 'compromised-1', 'BX-', DEVICES);
    // One certificate outside the batch, for OCSP while the batch is revoked.
    const newCsr = async (i: number) => {
      const keyPath = join(dir, `factory-key-${i}.pem`);
      writeFileSync(keyPath, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
      return (await fileFactoryKey(keyPath)).csr();
    };
    const birth = await bench.call('POST', '/factory/v1/birth-certificates', bench.factoryToken, { serial: 'OK-0', model: 'bench-1', batch: 'fine-1', csr: await newCsr(0) });
    const okSerial = new x509.X509Certificate(String(birth.json.certificate)).serialNumber;
    const port = Number(bench.http.split(':')[1]);
    const ocsp = [rawRequest('POST', '/ocsp', ocspRequest(issuerOf(issuers.factory.der), okSerial))];

    const started = performance.now();
    const answer = await bench.call('POST', '/operator/v1/batches/compromised-1/revoke', bench.operatorToken, { reason: 'keyCompromise' });
    if (answer.status !== 200 && answer.status !== 202) throw new Error(`batch revocation refused: ${JSON.stringify(answer.json)}`);
    let finished = answer.json.finished === true;
    let ocspAnswers = 0;
    let ocspSeconds = 0;
    let births = 0;
    let slowestBirthMs = 0;
    const births$ = (async () => {
      for (let i = 1; !finished; i += 1) {
        const t = performance.now();
        const born = await bench.call('POST', '/factory/v1/birth-certificates', bench.factoryToken, { serial: `OK-${i}`, model: 'bench-1', batch: 'fine-1', csr: await newCsr(i) });
        if (born.status === 201) births += 1;
        slowestBirthMs = Math.max(slowestBirthMs, performance.now() - t);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    let progress = answer.json;
    while (!finished) {
      const window = await load({ port, requests: ocsp, connections: 2, keepAlive: true, ms: 1000 });
      ocspAnswers += window.rate;
      ocspSeconds += 1;
      progress = (await bench.call('GET', '/operator/v1/batches/compromised-1/revocation', bench.operatorToken, undefined)).json;
      finished = progress.finished === true;
    }
    const seconds = (performance.now() - started) / 1000;
    await births$;
    return [
      { name: 'batch.revoke.seconds', value: seconds, unit: 's', note: `${String(progress.devices)} devices, ${String(progress.certificates)} certificates` },
      { name: 'batch.revoke.ocsp-during', value: ocspSeconds ? ocspAnswers / ocspSeconds : 0, unit: 'ops/s', note: 'OCSP answers while the batch is revoked, 2 connections' },
      { name: 'batch.revoke.births-during', value: births, unit: 'births', note: `birth certificates issued meanwhile, one every 200 ms at most; slowest ${Math.round(slowestBirthMs)} ms` },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await db.destroy();
    await bench.close();
  }
}
