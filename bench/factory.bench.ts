import { randomBytes, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { loadConfig } from '../server/config.ts';
import { openContext } from '../server/context.ts';
import { initialise } from '../server/ceremonies.ts';
import { createLogger } from '../server/logger.ts';
import { declareModel } from '../registry/models.ts';
import { serve } from '../server/serve.ts';
import { createToken } from '../server/tokens.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.ts';
import { throughput, type BenchResult } from './report.ts';

async function csrs(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    out.push((await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=d', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } })).toString('base64url'));
  }
  return out;
}

/** A throwaway PostgreSQL database (the tests' own fixture), or undefined when none answers. */
async function postgresDatabase(): Promise<TestDatabase | undefined> {
  try {
    return await createTestDatabase('postgres');
  } catch {
    return undefined;
  }
}

async function benchOn(kind: 'pglite' | 'postgres', ms: number): Promise<BenchResult[]> {
  const pg = kind === 'postgres' ? await postgresDatabase() : undefined;
  if (kind === 'postgres' && !pg) return [{ name: 'factory.birth.c8.postgres', value: 0, unit: 'ops/s', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const dataDir = mkdtempSync(join(tmpdir(), 'devid-bench-factory-'));
  const env = {
    DEVID_DATA_DIR: dataDir, DEVID_LISTEN: '127.0.0.1:0', DEVID_HTTP_LISTEN: '127.0.0.1:0', DEVID_PUBLIC_HOST: 'ca.bench.test',
    DEVID_HTTP_BASE_URL: 'http://pki.bench.test', ...(pg ? { DEVID_DATABASE_URL: pg.url } : {}),
  };
  const ctx = await openContext(loadConfig(env), createLogger('silent'), { prepareToken: true });
  const results: BenchResult[] = [];
  try {
    await initialise(ctx);
    const running = await serve(ctx);
    const token = (await createToken(ctx.store, ctx.audit, { role: 'factory', line: 'bench' }, 'cli', new Date())).token;
    await declareModel(ctx.store, ctx.audit, 'cli', 'bench-1', { hwType: '1.3.6.1.4.1.99999.9', manufacturer: 'Bench' }, new Date());
    const ca = running.hierarchy.root.certificate.toString('pem');
    const agent = new Agent({ keepAlive: true, maxSockets: 8, ca });
    const post = (path: string, body: unknown) => new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: running.httpsPort, servername: 'ca.bench.test', path, method: 'POST', agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
    const pool = await csrs(4000);
    let n = 0;
    const single = () => post('/factory/v1/birth-certificates', { serial: `B-${n}`, model: 'bench-1', batch: 'b', csr: pool[n++ % pool.length] });
    // The floor: the HSM signature every birth certificate costs, through the same provider.
    const factoryKey = running.hierarchy.factory.key;
    const floor = await throughput(() => ctx.provider.sign(factoryKey, randomBytes(300)), 1, Math.min(ms, 1000));
    const value = await throughput(async () => {
      if ((await single()) !== 201) throw new Error('birth certificate request failed');
    }, 8, ms);
    results.push({ name: `factory.birth.c8.${kind}`, value, unit: 'ops/s', floor });
    const batchRate = await throughput(async () => {
      const requests = Array.from({ length: 50 }, () => ({ serial: `B-${n}`, model: 'bench-1', batch: 'b', csr: pool[n++ % pool.length] }));
      if ((await post('/factory/v1/birth-certificates/batch', { requests })) !== 200) throw new Error('batch failed');
    }, 2, ms);
    results.push({ name: `factory.birth.batch50.${kind}`, value: batchRate * 50, unit: 'ops/s', floor });
    agent.destroy();
    await running.close();
  } finally {
    await ctx.close();
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return results;
}

/** Birth certificates per second over HTTPS, single requests with 8 clients and batches of 50, on both databases. */
export async function benchFactory(ms: number): Promise<BenchResult[]> {
  return [...(await benchOn('pglite', ms)), ...(await benchOn('postgres', ms))];
}
