import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { throughput, type BenchResult } from './report.ts';
import { startBenchCa } from './server-process.ts';
import { withSoftHsmToken } from './softhsm-token.ts';

async function csrs(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    out.push((await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=d', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } })).toString('base64url'));
  }
  return out;
}

/** The floor: the HSM signature every birth certificate costs, through the same provider, in this process. */
async function hsmFloor(ms: number): Promise<number> {
  return withSoftHsmToken('factory-floor', async (provider) => {
    const key = await provider.createKey('floor', 'P-256');
    return throughput(() => provider.sign(key, randomBytes(300)), 1, Math.min(ms, 1000));
  });
}

async function benchOn(kind: 'pglite' | 'postgres', ms: number, floor: number, pool: string[]): Promise<BenchResult[]> {
  const bench = await startBenchCa(kind, 8);
  if (!bench) return [{ name: 'factory.birth.c8.postgres', value: 0, unit: 'ops/s', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const results: BenchResult[] = [];
  try {
    let n = 0;
    const measure = async (name: string, per: number, concurrency: number, operation: () => Promise<void>) => {
      const cpuBefore = bench.server.cpuMs();
      const before = n;
      const rate = await throughput(operation, concurrency, ms);
      results.push({ name, value: rate * per, unit: 'ops/s', floor });
      results.push({ name: name.replace('factory.birth.', 'factory.birth.cpu.'), value: (bench.server.cpuMs() - cpuBefore) / Math.max(1, n - before), unit: 'ms/op', floor: 1000 / floor });
    };
    await measure(`factory.birth.c8.${kind}`, 1, 8, async () => {
      const i = n++;
      const { status } = await bench.call('POST', '/factory/v1/birth-certificates', bench.factoryToken, { serial: `B-${i}`, model: 'bench-1', batch: 'b', csr: pool[i % pool.length] });
      if (status !== 201) throw new Error('birth certificate request failed');
    });
    await measure(`factory.birth.batch50.${kind}`, 50, 2, async () => {
      const requests = Array.from({ length: 50 }, () => ({ serial: `B-${n}`, model: 'bench-1', batch: 'b', csr: pool[n++ % pool.length] }));
      if ((await bench.call('POST', '/factory/v1/birth-certificates/batch', bench.factoryToken, { requests })).status !== 200) throw new Error('batch failed');
    });
  } finally {
    await bench.close();
  }
  return results;
}

/**
 * Birth certificates per second over HTTPS against `devid-ca serve` in its
 * own process (single requests with 8 clients, batches of 50), on both
 * databases, and the server's CPU per certificate; the floor is the HSM
 * signature rate.
 */
export async function benchFactory(ms: number): Promise<BenchResult[]> {
  const floor = await hsmFloor(ms);
  const pool = await csrs(4000);
  return [...(await benchOn('pglite', ms, floor, pool)), ...(await benchOn('postgres', ms, floor, pool))];
}
