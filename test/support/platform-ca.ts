import { createHash, createPublicKey, sign as nodeSign, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AuthorizationList, IntegerSet, KeyDescription, SecurityLevel, id_ce_keyDescription } from '@peculiar/asn1-android';
import { Encoder } from 'cbor-x';
import type { AttestationInput } from '../../client/attestation.ts';
import { APPLE_OID } from '../../pki/attestation/apple/apple-format.ts';

/**
 * A platform vendor's attestation PKI made in the test (as Google's
 * hardware attestation roots or Apple's Enterprise Attestation Root are in
 * production): a root, an intermediate, and leaf certificates made fresh
 * for each attested key, carrying the vendor's extensions encoded with
 * @peculiar/asn1-schema.
 */
const crypto = webcrypto as Crypto;
const EC = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' };
const encoder = new Encoder({ useRecords: false, mapsAsObjects: false });
let serials = 0x1000;
const nextSerial = () => (++serials).toString(16).padStart(8, '0');

export interface PlatformCa {
  rootPem: string;
  intermediate: x509.X509Certificate;
  root: x509.X509Certificate;
  /** A leaf for the attested key (SPKI DER), with these extensions, issued by the intermediate. */
  leaf(spki: Buffer, extensions: x509.Extension[]): Promise<Buffer>;
}

export async function platformCa(name: string): Promise<PlatformCa> {
  const rootKeys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']) as CryptoKeyPair;
  const intermediateKeys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']) as CryptoKeyPair;
  const now = Date.now();
  const validity = { notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 365 * 86_400_000) };
  const caExtensions = (keys: CryptoKeyPair) => [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
  ];
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(), name: `CN=${name} Attestation Root`, keys: rootKeys, signingAlgorithm: SIGNING, ...validity, extensions: await Promise.all(caExtensions(rootKeys)),
  }, crypto);
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(), subject: `CN=${name} Attestation CA`, issuer: root.subject, publicKey: intermediateKeys.publicKey, signingKey: rootKeys.privateKey,
    signingAlgorithm: SIGNING, ...validity,
    extensions: [...await Promise.all(caExtensions(intermediateKeys)), await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey, false, crypto)],
  }, crypto);
  return {
    root, intermediate, rootPem: root.toString('pem'),
    async leaf(spki, extensions) {
      const publicKey = await crypto.subtle.importKey("spki", new Uint8Array(spki), EC, true, ['verify']);
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: nextSerial(), subject: 'CN=Attested Key', issuer: intermediate.subject, publicKey, signingKey: intermediateKeys.privateKey,
        signingAlgorithm: SIGNING, ...validity,
        extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), await x509.AuthorityKeyIdentifierExtension.create(intermediateKeys.publicKey, false, crypto), ...extensions],
      }, crypto);
      return Buffer.from(leaf.rawData);
    },
  };
}

/** What an Android KeyDescription says, as a test chooses it. */
export interface AndroidClaims {
  challenge: Buffer;
  securityLevel?: SecurityLevel;
  teeSerial?: string;
  softwareSerial?: string;
}

/** The Android Key Attestation extension (KeyMint 3 KeyDescription): a key generated in the TEE, to sign. */
export function keyDescriptionExtension(claims: AndroidClaims): x509.Extension {
  const level = claims.securityLevel ?? SecurityLevel.trustedEnvironment;
  const serial = (text: string | undefined) => (text === undefined ? {} : { attestationIdSerial: new OctetString(Buffer.from(text, 'utf8')) });
  const description = new KeyDescription({
    attestationVersion: 300, attestationSecurityLevel: level, keymasterVersion: 300, keymasterSecurityLevel: level,
    attestationChallenge: new OctetString(claims.challenge), uniqueId: new OctetString(),
    softwareEnforced: new AuthorizationList({ creationDateTime: Date.now(), ...serial(claims.softwareSerial) }),
    teeEnforced: new AuthorizationList({ purpose: new IntegerSet([2]), algorithm: 3, ecCurve: 1, origin: 0, ...serial(claims.teeSerial) }),
  });
  return new x509.Extension(id_ce_keyDescription, false, AsnConvert.serialize(description));
}

export interface AndroidOptions {
  ca: PlatformCa;
  /** The new key's private half: KeyMint signs the key authorization with it. */
  key: KeyObject;
  serial?: string;
  securityLevel?: SecurityLevel;
  softwareSerialOnly?: boolean;
  challenge?: (keyAuthorization: string) => Buffer;
}

/** A builder for Device.enroll: fmt "android-key" = {"alg": -7, "sig" over the key authorization, "x5c": [leaf, intermediate, root]}. */
export function androidAttestation(options: AndroidOptions): (input: AttestationInput) => Promise<Buffer> {
  return async (input) => {
    const spki = createPublicKey(options.key).export({ format: 'der', type: 'spki' });
    const serial = options.serial;
    const leaf = await options.ca.leaf(spki, [keyDescriptionExtension({
      challenge: options.challenge?.(input.keyAuthorization) ?? Buffer.from(input.keyAuthorization, 'utf8'),
      ...(options.securityLevel === undefined ? {} : { securityLevel: options.securityLevel }),
      ...(options.softwareSerialOnly ? { softwareSerial: serial } : { teeSerial: serial }),
    })]);
    const sig = nodeSign('sha256', Buffer.from(input.keyAuthorization, 'utf8'), options.key);
    const attStmt = new Map<string, unknown>([['alg', -7], ['sig', sig], ['x5c', [leaf, Buffer.from(options.ca.intermediate.rawData), Buffer.from(options.ca.root.rawData)]]]);
    return encoder.encode(new Map<string, unknown>([['fmt', 'android-key'], ['attStmt', attStmt]]));
  };
}

export interface AppleOptions {
  ca: PlatformCa;
  key: KeyObject;
  serial: string;
  /** What the freshness code is made from (default: the challenge token). */
  nonceOf?: (token: string, keyAuthorization: string) => string;
}

/** A builder for Device.enroll: fmt "apple" = {"x5c": [leaf with the serial and SHA-256(token), intermediate]}. */
export function appleAttestation(options: AppleOptions): (input: AttestationInput) => Promise<Buffer> {
  return async (input) => {
    const token = input.keyAuthorization.split('.')[0]!;
    const nonce = createHash('sha256').update(options.nonceOf?.(token, input.keyAuthorization) ?? token, 'utf8').digest();
    const spki = createPublicKey(options.key).export({ format: 'der', type: 'spki' });
    const leaf = await options.ca.leaf(spki, [
      new x509.Extension(APPLE_OID.serialNumber, false, Buffer.from(options.serial, 'utf8')),
      new x509.Extension(APPLE_OID.nonce, false, nonce),
    ]);
    const attStmt = new Map<string, unknown>([['x5c', [leaf, Buffer.from(options.ca.intermediate.rawData)]]]);
    return encoder.encode(new Map<string, unknown>([['fmt', 'apple'], ['attStmt', attStmt]]));
  };
}
