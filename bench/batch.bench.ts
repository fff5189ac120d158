import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import knexFactory from 'knex';
import { fileFactoryKey } from '../client/factory-key.ts';
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
    await db.raw(
      `insert into devices (serial, model, batch, line, state, factory_key_sha256, reprovision_allowed, sign_count, created_at, updated_at)
       select 'BX-' || g, 'bench-1', 'compromised-1', 'bench', 'active', md5('fk' || g) || md5('fk2' || g), false, 0, now(), now() from generate_series(1, ?) g`,
      [DEVICES],
    );
    for (const [kind, issuer] of [['birth', issuers.factory], ['operational', issuers.operational]] as const) {
      await db.raw(
        `insert into certificates (serial, kind, issuer_id, device_serial, subject, der, sha256, key_sha256, not_before, not_after, created_at)
         select '7' || substr(md5(random()::text || g::text), 2, 31), ?, ?, 'BX-' || g, 'CN=bench', '\\x00'::bytea,
                md5(? || g) || md5(? || g || 'x'), md5('k' || ? || g) || md5('l' || ? || g), now(), now() + interval '2 days', now()
         from generate_series(1, ?) g`,
        [kind, issuer.id, kind, kind, kind, kind, DEVICES],
      );
    }
    await db.raw('vacuum analyze devices, certificates');
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
