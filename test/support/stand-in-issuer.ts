import type { Store } from '../../store/store.ts';

/**
 * An active CA certificate row with filler values, for tests and benchmarks
 * that need certificates to name an issuer but never sign or parse anything.
 */
export async function standInIssuer(store: Pick<Store, 'caCertificates'>, role: 'factory' | 'operational'): Promise<number> {
  const now = new Date();
  return (await store.caCertificates.insert({
    role, generation: 1, serial: `${role}-1`, der: Buffer.from('der'), ski: Buffer.alloc(20), publicKey: Buffer.from('spki'),
    keyLabel: `devid-${role}`, keyId: Buffer.alloc(16), notBefore: now, notAfter: now, active: true, createdAt: now,
  })).id;
}
