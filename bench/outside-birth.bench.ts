import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateBirthChain } from '../enroll/attestation/birth-chain.ts';
import { pemCertificates } from '../registry/manufacturers.ts';
import { outsideCa } from '../test/support/outside-ca.ts';
import type { BenchResult } from './report.ts';

/** Runs `operation` for about `ms`; operations per second (synchronous work, one caller). */
function rate(operation: () => void, ms: number): number {
  for (let i = 0; i < 50; i += 1) operation();
  let done = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    operation();
    done += 1;
  }
  return (done * 1000) / (performance.now() - started);
}

/**
 * Check 1 for a device born elsewhere: RFC 5280 path validation of its birth
 * certificate (made by an OpenSSL manufacturer CA, as in the tests) up to
 * the registered root. The floor is what no validator can skip per device:
 * parsing the birth certificate once and verifying its signature.
 */
export async function benchOutsideBirth(ms: number): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-oem-'));
  try {
    const ca = outsideCa('bench-oem', join(dir, 'oem'));
    const birth = ca.birth({ serial: 'bench-0001', hwType: '1.3.6.1.4.1.99999.1' });
    const anchors = [...pemCertificates(ca.rootPem, 'root'), ...pemCertificates(ca.intermediatePem, 'intermediate')];
    const x5c = pemCertificates(birth.chainPem, 'chain');
    const issuerKey = new X509Certificate(anchors[1]!).publicKey;
    const floor = rate(() => new X509Certificate(x5c[0]!).verify(issuerKey), ms);
    const value = rate(() => validateBirthChain(x5c, anchors, new Date()), ms);
    return [{ name: 'attest.outside-birth.chain', value, unit: 'ops/s', floor, note: 'per attestation of a device born elsewhere, one core' }];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
