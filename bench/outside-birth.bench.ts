import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateBirthChain } from '../pki/attestation/birth-chain.ts';
import { readCrl } from '../registry/manufacturers/crl-reader.ts';
import { pemCertificates } from '../registry/manufacturers/manufacturers.ts';
import { bulkCrl, outsideCa } from '../test/support/outside-ca.ts';
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
 * A manufacturer CRL of 100,000 entries made by `openssl ca`, read by
 * registry/manufacturers/crl-reader.ts (@peculiar/x509 refuses it: too many ASN.1 nodes);
 * the floor is one SHA-256 pass over the same bytes.
 */
function bigCrl(dir: string): BenchResult {
  const { der } = bulkCrl(join(dir, 'big'), 100_000);
  const timed = (work: () => void) => {
    work();
    const started = performance.now();
    for (let i = 0; i < 3; i += 1) work();
    return (performance.now() - started) / 3;
  };
  const floor = timed(() => createHash('sha256').update(der).digest());
  const value = timed(() => readCrl(der));
  return { name: 'manufacturer.crl.read.100k', value, unit: 'ms', floor, note: `${der.length} bytes of DER; @peculiar/x509 refuses it, asn1js with its node guard raised took 9.6 s` };
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
    return [
      { name: 'attest.outside-birth.chain', value, unit: 'ops/s', floor, note: 'per attestation of a device born elsewhere, one core' },
      bigCrl(dir),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
