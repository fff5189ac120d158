import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export type DeviceKeyType = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'ed25519' | 'rsa2048' | 'rsa1024';

const ALGORITHMS: Record<DeviceKeyType, RsaHashedKeyGenParams | EcKeyGenParams | Algorithm> = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256' } as EcKeyGenParams,
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384' } as EcKeyGenParams,
  'ec-p521': { name: 'ECDSA', namedCurve: 'P-521' } as EcKeyGenParams,
  ed25519: { name: 'Ed25519' },
  rsa2048: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as RsaHashedKeyGenParams,
  rsa1024: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as RsaHashedKeyGenParams,
};

const SIGNING: Record<DeviceKeyType, Algorithm | EcdsaParams> = {
  'ec-p256': { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
  'ec-p384': { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams,
  'ec-p521': { name: 'ECDSA', hash: 'SHA-512' } as EcdsaParams,
  ed25519: { name: 'Ed25519' },
  rsa2048: { name: 'RSASSA-PKCS1-v1_5' },
  rsa1024: { name: 'RSASSA-PKCS1-v1_5' },
};

/** A device's factory key pair and its PKCS#10 request, as a factory line's tooling would make them. */
export interface DeviceKey {
  keys: CryptoKeyPair;
  csrPem: string;
  csrDer: Uint8Array;
}

export async function makeDeviceKey(type: DeviceKeyType = 'ec-p256', name = 'CN=device'): Promise<DeviceKey> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHMS[type], true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm: SIGNING[type] });
  return { keys, csrPem: csr.toString('pem'), csrDer: new Uint8Array(csr.rawData) };
}

/** The same request with one bit of its signature flipped. */
export function tamperedCsr(der: Uint8Array): string {
  const copy = Buffer.from(der);
  copy[copy.length - 5]! ^= 0x01;
  return copy.toString('base64url');
}
