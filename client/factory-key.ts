import { createPrivateKey, createPublicKey, sign as nodeSign, webcrypto, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import { ecdsaSigValue } from '../ca/signer.ts';
import type { KeyHandle } from '../hsm/provider.ts';
import { HsmCryptoKey, hsmCrypto, signingAlgorithm } from '../hsm/webcrypto.ts';

/**
 * The device's factory key: it signs the CSR for the birth certificate and
 * every attestation. In a file (development) or in a PKCS#11 token (a
 * SoftHSM token standing in for a secure element), where it never leaves.
 */
export interface FactoryKey {
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  /** COSE algorithm of its signatures: -7 ES256, -35 ES384, -8 EdDSA, -257 RS256. */
  coseAlg: number;
  /** A signature in the form the attestation carries (ECDSA as DER Ecdsa-Sig-Value). */
  sign(data: Buffer): Promise<Buffer>;
  /** A PKCS#10 request signed by the key (the factory line sends it for the birth certificate). */
  csr(): Promise<string>;
  close(): Promise<void>;
}

function coseAlgOf(key: KeyObject): { alg: number; hash: string | null } {
  if (key.asymmetricKeyType === 'ec') return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? { alg: -35, hash: 'sha384' } : { alg: -7, hash: 'sha256' };
  if (key.asymmetricKeyType === 'ed25519') return { alg: -8, hash: null };
  return { alg: -257, hash: 'sha256' };
}

/** A factory key in a PKCS#8 PEM file. */
export async function fileFactoryKey(path: string): Promise<FactoryKey> {
  const privateKey = createPrivateKey(readFileSync(path));
  const publicKey = createPublicKey(privateKey);
  const { alg, hash } = coseAlgOf(publicKey);
  return {
    spki: publicKey.export({ format: 'der', type: 'spki' }),
    coseAlg: alg,
    sign: async (data) => nodeSign(hash, data, privateKey),
    csr: async () => {
      const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
      const algorithm = alg === -8 ? { name: 'Ed25519' } : alg === -257 ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: alg === -35 ? 'P-384' : 'P-256' };
      const signing = alg === -8 ? { name: 'Ed25519' } : alg === -257 ? { name: 'RSASSA-PKCS1-v1_5' } : { name: 'ECDSA', hash: alg === -35 ? 'SHA-384' : 'SHA-256' };
      const imported = await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
      const publicImported = await webcrypto.subtle.importKey('spki', publicKey.export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']);
      return (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=device', keys: { privateKey: imported, publicKey: publicImported }, signingAlgorithm: signing })).toString('pem');
    },
    close: async () => {},
  };
}

export interface Pkcs11FactoryKeyOptions {
  modulePath: string;
  tokenLabel: string;
  pin: string;
  label: string;
}

/** A factory key in a PKCS#11 token (EC P-256 or P-384), found by label; created there when `create` is set. */
export async function pkcs11FactoryKey(options: Pkcs11FactoryKeyOptions, create = false): Promise<FactoryKey> {
  // PKCS#11 (a native module) loads only for a device whose key is in a token.
  const { Pkcs11KeyProvider } = await import('../hsm/pkcs11-provider.ts');
  const provider = await Pkcs11KeyProvider.open({ modulePath: options.modulePath, tokenLabel: options.tokenLabel, pin: options.pin, sessions: 1 });
  try {
    const found = await provider.findKey(options.label);
    const key: KeyHandle = found ?? (create ? await provider.createKey(options.label, 'P-256') : undefined)!;
    if (!key) throw new Error(`the token holds no key labelled "${options.label}"`);
    const crypto = hsmCrypto(provider);
    return {
      spki: key.publicKey.export({ format: 'der', type: 'spki' }),
      coseAlg: key.curve === 'P-384' ? -35 : -7,
      sign: async (data) => ecdsaSigValue(await provider.sign(key, data)),
      csr: async () => {
        const publicKey = await webcrypto.subtle.importKey('spki', key.publicKey.export({ format: 'der', type: 'spki' }), { name: 'ECDSA', namedCurve: key.curve }, true, ['verify']);
        const request = await x509.Pkcs10CertificateRequestGenerator.create(
          { name: 'CN=device', keys: { privateKey: new HsmCryptoKey(key), publicKey }, signingAlgorithm: signingAlgorithm(key) }, crypto);
        return request.toString('pem');
      },
      close: () => provider.close(),
    };
  } catch (err) {
    await provider.close();
    throw err;
  }
}
