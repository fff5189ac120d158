import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as Crypto);
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/**
 * A TPM maker's CA, as the TCG EK credential profile has it: a root, and
 * the EK certificate it issues for one TPM's RSA endorsement key
 * (keyEncipherment: the EK decrypts, it never signs).
 */
export async function testTpmMaker(ekSpki: Buffer): Promise<{ rootPem: string; ekDer: Buffer }> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA, false, ['sign', 'verify'])) as CryptoKeyPair;
  const validity = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 365 * 86400_000) };
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Test TPM Maker EK Root', keys, signingAlgorithm: ECDSA, ...validity,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
  const ekKey = await webcrypto.subtle.importKey('spki', ekSpki, { name: 'RSA-OAEP', hash: 'SHA-256' }, true, ['encrypt']);
  const ek = await x509.X509CertificateGenerator.create({
    serialNumber: '0a1b2d', issuer: root.subject, subject: 'CN=TPM EK', ...validity, publicKey: ekKey, signingKey: keys.privateKey, signingAlgorithm: ECDSA,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment, true), await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey)],
  });
  return { rootPem: root.toString('pem'), ekDer: Buffer.from(ek.rawData) };
}
