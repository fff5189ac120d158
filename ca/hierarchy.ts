import { createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Curve } from '../hsm/curves.ts';
import type { KeyHandle, KeyProvider } from '../hsm/provider.ts';
import type { Store } from '../store/store.ts';
import type { CaCertificateRecord, CaName } from '../store/types.ts';
import { OID, buildName } from './asn1.ts';
import { Issuer, signWithKey } from './issuer.ts';
import { BACKDATE_MS, DAY_MS, NO_EXPIRY, intermediateExtensions, rootExtensions } from './profiles.ts';
import { randomSerial } from './serial.ts';

export const CA_NAMES: readonly CaName[] = ['root', 'factory', 'operational'];

/** CKA_LABEL of each CA key (SPEC section 1). */
export const CA_KEY_LABELS: Record<CaName, string> = {
  root: 'devid-root',
  factory: 'devid-factory',
  operational: 'devid-operational',
};

export const DEFAULT_CA_CURVES: Record<CaName, Curve> = { root: 'P-384', factory: 'P-256', operational: 'P-256' };

const CA_COMMON_NAMES: Record<CaName, string> = {
  root: 'devid-ca Root CA',
  factory: 'devid-ca Factory CA',
  operational: 'devid-ca Operational CA',
};

const OPERATIONAL_LIFETIME_MS = 5 * 365 * DAY_MS;

export class HierarchyError extends Error {
  override readonly name = 'HierarchyError';
}

/** The two-tier hierarchy: a root over the factory and operational intermediates. */
export class Hierarchy {
  constructor(
    readonly root: Issuer,
    readonly factory: Issuer,
    readonly operational: Issuer,
  ) {}

  issuer(name: CaName): Issuer {
    return this[name];
  }

  /** PEM of an intermediate followed by the root, as handed to devices. */
  chainPem(name: 'factory' | 'operational'): string {
    return [this[name].certificate.toString('pem'), this.root.certificate.toString('pem')].join('\n');
  }
}

export interface CreateHierarchyOptions {
  organization: string;
  baseUrl: string;
  curves?: Partial<Record<CaName, Curve>>;
  now: Date;
}

/**
 * Why a new hierarchy must not be created here, or undefined when none exists:
 * the database holds CA certificates, or the token holds a CA key (SPEC section 1).
 */
export async function existingHierarchy(provider: KeyProvider, store: Store): Promise<string | undefined> {
  if ((await store.caCertificates.count()) > 0) return 'the database already holds a CA hierarchy';
  for (const name of CA_NAMES) {
    if (await provider.findKey(CA_KEY_LABELS[name])) return `the token already holds a key labelled "${CA_KEY_LABELS[name]}"`;
  }
  return undefined;
}

/** Removes the CA keys from the token: only to undo an init whose database work failed. */
export async function destroyHierarchyKeys(provider: KeyProvider): Promise<void> {
  for (const name of CA_NAMES) {
    const key = await provider.findKey(CA_KEY_LABELS[name]);
    if (key) await provider.destroyKey(key);
  }
}

/** Generates the three CA keys in the token and certifies them; records the certificates. */
export async function createHierarchy(
  provider: KeyProvider,
  crypto: Crypto,
  store: Store,
  options: CreateHierarchyOptions,
): Promise<Hierarchy> {
  const reason = await existingHierarchy(provider, store);
  if (reason) throw new HierarchyError(`refusing to create a second hierarchy: ${reason}`);
  const curves = { ...DEFAULT_CA_CURVES, ...options.curves };
  const keys = {} as Record<CaName, KeyHandle>;
  for (const name of CA_NAMES) keys[name] = await provider.createKey(CA_KEY_LABELS[name], curves[name]);

  const notBefore = new Date(options.now.getTime() - BACKDATE_MS);
  const subject = (name: CaName) =>
    buildName([[OID.organization, 'utf8', options.organization], [OID.commonName, 'utf8', CA_COMMON_NAMES[name]]]);

  const rootPublic = publicKeyOf(keys.root);
  const rootCertificate = await signWithKey(keys.root, crypto, subject('root'), {
    serialNumber: randomSerial(),
    subject: subject('root'),
    publicKey: rootPublic,
    notBefore,
    notAfter: NO_EXPIRY,
    extensions: await rootExtensions(rootPublic, crypto),
  });
  const root = new Issuer('root', rootCertificate, keys.root, crypto);

  const intermediate = async (name: 'factory' | 'operational', notAfter: Date) => {
    const publicKey = publicKeyOf(keys[name]);
    const certificate = await root.sign({
      serialNumber: randomSerial(),
      subject: subject(name),
      publicKey,
      notBefore,
      notAfter,
      extensions: await intermediateExtensions(root, publicKey, options.baseUrl, crypto),
    });
    return new Issuer(name, certificate, keys[name], crypto);
  };
  const factory = await intermediate('factory', NO_EXPIRY);
  const operational = await intermediate('operational', new Date(options.now.getTime() + OPERATIONAL_LIFETIME_MS));

  const hierarchy = new Hierarchy(root, factory, operational);
  await store.transaction(async (tx) => {
    for (const issuer of [root, factory, operational]) {
      await tx.caCertificates.insert({
        name: issuer.name,
        serial: issuer.certificate.serialNumber,
        der: Buffer.from(issuer.certificate.rawData),
        keyLabel: issuer.key.label,
        keyId: issuer.key.id,
        notAfter: issuer.certificate.notAfter,
        createdAt: options.now,
      });
    }
  });
  return hierarchy;
}

/**
 * Loads the hierarchy recorded in the database and finds each key in the
 * token; refuses when a key is missing or does not match its certificate
 * (after Boulder's issuance/issuer.go start-up check). With `rootOffline`
 * allowed, a missing root key is accepted: the root signs only the
 * intermediates and its CRL, so `serve` runs without it.
 */
export async function loadHierarchy(provider: KeyProvider, crypto: Crypto, store: Store, options: { allowOfflineRoot?: boolean } = {}): Promise<Hierarchy> {
  const records = await store.caCertificates.active();
  const issuers = {} as Record<CaName, Issuer>;
  for (const name of CA_NAMES) {
    const record = records.find((r) => r.name === name);
    if (!record) throw new HierarchyError(`the database holds no ${name} CA certificate: run "devid-ca init"`);
    const certificate = new x509.X509Certificate(new Uint8Array(record.der));
    const key = await provider.findKey(record.keyLabel);
    if (!key && !(name === 'root' && options.allowOfflineRoot)) {
      throw new HierarchyError(`the token holds no key labelled "${record.keyLabel}" for the ${name} CA`);
    }
    if (key) checkKeyMatches(key, record, certificate);
    issuers[name] = new Issuer(name, certificate, key, crypto);
  }
  return new Hierarchy(issuers.root, issuers.factory, issuers.operational);
}

function checkKeyMatches(key: KeyHandle, record: CaCertificateRecord, certificate: x509.X509Certificate): void {
  const certified = createPublicKey({ key: Buffer.from(certificate.publicKey.rawData), format: 'der', type: 'spki' });
  if (!certified.equals(key.publicKey)) {
    throw new HierarchyError(`the key "${record.keyLabel}" in the token does not match the ${record.name} CA certificate ${record.serial}`);
  }
  if (!key.id.equals(record.keyId)) {
    throw new HierarchyError(`the key "${record.keyLabel}" in the token has CKA_ID ${key.id.toString('hex')}, not the recorded ${record.keyId.toString('hex')}`);
  }
}

export function publicKeyOf(key: KeyHandle): x509.PublicKey {
  return new x509.PublicKey(key.publicKey.export({ format: 'der', type: 'spki' }));
}
