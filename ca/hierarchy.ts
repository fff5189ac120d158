import { createPublicKey, X509Certificate as NodeCertificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Curve } from '../hsm/curves.ts';
import type { KeyHandle, KeyProvider } from '../hsm/provider.ts';
import type { HierarchyStore } from '../store/subsets.ts';
import type { CaCertificateRecord, CaRole, NewCaCertificate } from '../store/types.ts';
import { OID } from './asn1.ts';
import { name, wholeSeconds } from './der.ts';
import { Issuer, caKeyLabel, caSlug, signWithKey } from './issuer.ts';
import { BACKDATE_MS, DAY_MS, NO_EXPIRY, auditKeyExtensions, intermediateExtensions, rootExtensions } from './profiles.ts';
import { randomSerial } from './serial.ts';
import { Signer } from './signer.ts';

/** The roles whose keys `init` creates, in the order it creates them. */
export const INIT_ROLES: readonly CaRole[] = ['root', 'factory', 'operational', 'audit'];

export const DEFAULT_CA_CURVES: Record<CaRole, Curve> = { root: 'P-384', factory: 'P-256', operational: 'P-256', firmware: 'P-256', audit: 'P-256' };

const COMMON_NAMES: Record<CaRole, string> = {
  root: 'devid-ca Root CA',
  factory: 'devid-ca Factory CA',
  operational: 'devid-ca Operational CA',
  firmware: 'devid-ca Firmware CA',
  audit: 'devid-ca Audit Key',
};

const OPERATIONAL_LIFETIME_MS = 5 * 365 * DAY_MS;

export class HierarchyError extends Error {
  override readonly name = 'HierarchyError';
}

/**
 * The two-tier hierarchy: a root over the factory and operational
 * intermediates, with every retired operational intermediate that still
 * answers for the certificates it signed. Each CA is its CA-certificate row.
 */
export class Hierarchy {
  constructor(readonly issuers: readonly Issuer[]) {}

  /** The active CA of a role: the one that signs new certificates. */
  active(role: 'root' | 'factory' | 'operational' | 'firmware'): Issuer {
    const issuer = this.issuers.find((i) => i.role === role && i.record.active);
    if (!issuer) throw new HierarchyError(`the hierarchy has no active ${role} CA`);
    return issuer;
  }

  get root(): Issuer {
    return this.active('root');
  }

  get factory(): Issuer {
    return this.active('factory');
  }

  get operational(): Issuer {
    return this.active('operational');
  }

  /** The firmware intermediate, once its ceremony has run (`devid-ca ca create firmware`). */
  get firmware(): Issuer | undefined {
    return this.issuers.find((i) => i.role === 'firmware' && i.record.active);
  }

  byId(id: number): Issuer | undefined {
    return this.issuers.find((i) => i.id === id);
  }

  bySlug(slug: string): Issuer | undefined {
    return this.issuers.find((i) => i.slug === slug);
  }

  /** PEM of an intermediate followed by the root, as handed to devices. */
  chainPem(intermediate: Issuer): string {
    return [intermediate.certificate.toString('pem'), this.root.certificate.toString('pem')].join('\n');
  }
}

/**
 * The keys a ceremony (init, rollover) creates in the token. If the
 * ceremony's transaction does not commit, `undo` destroys exactly those keys,
 * by CKA_ID, and only those the database does not record (a commit whose
 * answer was lost must not lose its keys): never another hierarchy's keys.
 */
export class KeyCeremony {
  readonly created: KeyHandle[] = [];

  constructor(readonly provider: KeyProvider) {}

  async createKey(label: string, curve: Curve): Promise<KeyHandle> {
    const key = await this.provider.createKey(label, curve);
    this.created.push(key);
    return key;
  }

  async undo(store: HierarchyStore): Promise<KeyHandle[]> {
    const recorded = await store.ocspResponders.keyIds();
    for (const id of await store.firmwareSigners.keyIds()) recorded.add(id);
    for (const record of await store.caCertificates.all()) recorded.add(record.keyId.toString('hex'));
    const orphans = this.created.filter((key) => !recorded.has(key.id.toString('hex')));
    for (const key of orphans) await this.provider.destroyKey(key);
    return orphans;
  }
}

export interface CreateHierarchyOptions {
  organization: string;
  baseUrl: string;
  curves?: Partial<Record<CaRole, Curve>>;
  now: Date;
}

/**
 * Why a new hierarchy must not be created here, or undefined when none exists:
 * the database holds CA certificates, or the token holds a CA key (docs/reference/certificates.md).
 */
export async function existingHierarchy(provider: KeyProvider, store: HierarchyStore): Promise<string | undefined> {
  if ((await store.caCertificates.count()) > 0) return 'the database already holds a CA hierarchy';
  // The firmware intermediate is made after init, but its key too belongs to a hierarchy.
  for (const role of [...INIT_ROLES, 'firmware'] as const) {
    const label = caKeyLabel(role, 1);
    if (await provider.findKey(label)) return `the token already holds a key labelled "${label}"`;
  }
  return undefined;
}

function subjectOf(organization: string, role: CaRole, generation: number): x509.Name {
  const common = generation === 1 ? COMMON_NAMES[role] : `${COMMON_NAMES[role]} ${generation}`;
  return new x509.Name(new Uint8Array(name([[OID.organization, 'utf8', organization], [OID.commonName, 'utf8', common]])));
}

function recordOf(role: CaRole, generation: number, certificate: x509.X509Certificate, key: KeyHandle, now: Date): NewCaCertificate {
  return {
    role,
    generation,
    serial: certificate.serialNumber,
    der: Buffer.from(certificate.rawData),
    ski: Buffer.from(certificate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, 'hex'),
    publicKey: key.publicKey.export({ format: 'der', type: 'spki' }),
    keyLabel: key.label,
    keyId: key.id,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    active: true,
    createdAt: now,
  };
}

export function publicKeyOf(key: KeyHandle): x509.PublicKey {
  return new x509.PublicKey(key.publicKey.export({ format: 'der', type: 'spki' }));
}

/** The validity of CA certificates: whole seconds, backdated for clock skew. */
function caNotBefore(now: Date): Date {
  return wholeSeconds(new Date(now.getTime() - BACKDATE_MS));
}

/** A certificate for a key under the root: an intermediate, or the audit key. */
async function certifyUnderRoot(root: Issuer, role: Exclude<CaRole, 'root'>, generation: number, key: KeyHandle, crypto: Crypto, options: CreateHierarchyOptions): Promise<x509.X509Certificate> {
  const publicKey = publicKeyOf(key);
  const extensions = role === 'audit'
    ? await auditKeyExtensions(root, publicKey, options.baseUrl, crypto)
    : await intermediateExtensions(root, publicKey, options.baseUrl, crypto);
  const notAfter = role === 'operational' ? wholeSeconds(new Date(options.now.getTime() + OPERATIONAL_LIFETIME_MS)) : NO_EXPIRY;
  return root.signCaCertificate({
    serialNumber: randomSerial().toString('hex'),
    subject: subjectOf(options.organization, role, generation),
    publicKey,
    notBefore: caNotBefore(options.now),
    notAfter,
    extensions,
  });
}

/**
 * Generates the CA keys (root, factory, operational) and the audit key in the
 * token, certifies them and records each certificate with its key's CKA_ID
 * and public key. The caller holds the ceremony lock and has checked that no
 * hierarchy exists; run inside its transaction.
 */
export async function createHierarchy(ceremony: KeyCeremony, crypto: Crypto, tx: HierarchyStore, options: CreateHierarchyOptions): Promise<{ hierarchy: Hierarchy; audit: CaCertificateRecord }> {
  const curves = { ...DEFAULT_CA_CURVES, ...options.curves };
  const keys = {} as Record<CaRole, KeyHandle>;
  for (const role of INIT_ROLES) keys[role] = await ceremony.createKey(caKeyLabel(role, 1), curves[role]);
  const provider = ceremony.provider;

  const rootPublic = publicKeyOf(keys.root);
  const rootCertificate = await signWithKey(keys.root, crypto, subjectOf(options.organization, 'root', 1), {
    serialNumber: randomSerial().toString('hex'),
    subject: subjectOf(options.organization, 'root', 1),
    publicKey: rootPublic,
    notBefore: caNotBefore(options.now),
    notAfter: NO_EXPIRY,
    extensions: await rootExtensions(rootPublic, crypto),
  });
  const root = new Issuer(await tx.caCertificates.insert(recordOf('root', 1, rootCertificate, keys.root, options.now)), rootCertificate, new Signer(provider, keys.root), crypto);
  const issuers = [root];
  for (const role of ['factory', 'operational'] as const) {
    const certificate = await certifyUnderRoot(root, role, 1, keys[role], crypto, options);
    const record = await tx.caCertificates.insert(recordOf(role, 1, certificate, keys[role], options.now));
    issuers.push(new Issuer(record, certificate, new Signer(provider, keys[role]), crypto));
  }
  const auditCertificate = await certifyUnderRoot(root, 'audit', 1, keys.audit, crypto, options);
  const audit = await tx.caCertificates.insert(recordOf('audit', 1, auditCertificate, keys.audit, options.now));
  return { hierarchy: new Hierarchy(issuers), audit };
}

/**
 * A root ceremony (docs/reference/certificates.md): a new key and a new operational
 * intermediate, which signs every new certificate from now on; the old one
 * is retired but keeps signing its CRL and OCSP until its last certificate
 * expires. Run inside the caller's transaction, under the ceremony lock.
 */
export async function rolloverOperational(ceremony: KeyCeremony, crypto: Crypto, tx: HierarchyStore, hierarchy: Hierarchy, options: CreateHierarchyOptions): Promise<{ previous: Issuer; next: Issuer }> {
  const root = hierarchy.root;
  if (!root.online) throw new HierarchyError('a rollover is a root ceremony: connect the token that holds the root key (devid-root) first');
  const previous = hierarchy.operational;
  const generation = Math.max(...hierarchy.issuers.filter((i) => i.role === 'operational').map((i) => i.record.generation)) + 1;
  const key = await ceremony.createKey(caKeyLabel('operational', generation), options.curves?.operational ?? DEFAULT_CA_CURVES.operational);
  const certificate = await certifyUnderRoot(root, 'operational', generation, key, crypto, options);
  if (!(await tx.caCertificates.retire(previous.id))) throw new HierarchyError(`the ${previous.slug} CA is no longer the active one: another rollover ran at the same time`);
  const record = await tx.caCertificates.insert(recordOf('operational', generation, certificate, key, options.now));
  return { previous, next: new Issuer(record, certificate, new Signer(ceremony.provider, key), crypto) };
}

/**
 * A root ceremony (docs/operators/firmware.md): the firmware intermediate's key
 * (`devid-firmware`) and certificate, under the root like the other
 * intermediates (pathLen 0, the root's CRL), valid until 9999 like the factory
 * intermediate: devices anchor firmware manifests at it for their whole life.
 * Run inside the caller's transaction, under the ceremony lock.
 */
export async function createFirmwareIntermediate(ceremony: KeyCeremony, crypto: Crypto, tx: HierarchyStore, hierarchy: Hierarchy, options: CreateHierarchyOptions): Promise<Issuer> {
  const root = hierarchy.root;
  if (hierarchy.firmware) throw new HierarchyError(`the firmware intermediate exists already (serial ${hierarchy.firmware.record.serial}, key ${hierarchy.firmware.record.keyLabel})`);
  if (!root.online) throw new HierarchyError('the firmware intermediate is made in a root ceremony: connect the token that holds the root key (devid-root) first');
  const generation = Math.max(0, ...hierarchy.issuers.filter((i) => i.role === 'firmware').map((i) => i.record.generation)) + 1;
  const key = await ceremony.createKey(caKeyLabel('firmware', generation), options.curves?.firmware ?? DEFAULT_CA_CURVES.firmware);
  const certificate = await certifyUnderRoot(root, 'firmware', generation, key, crypto, options);
  const record = await tx.caCertificates.insert(recordOf('firmware', generation, certificate, key, options.now));
  return new Issuer(record, certificate, new Signer(ceremony.provider, key), crypto);
}

/** Certifies an existing audit key (a deployment from before keys were recorded): needs the root online. */
export async function certifyAuditKey(root: Issuer, key: KeyHandle, crypto: Crypto, options: CreateHierarchyOptions): Promise<NewCaCertificate> {
  const certificate = await certifyUnderRoot(root, 'audit', 1, key, crypto, options);
  return recordOf('audit', 1, certificate, key, options.now);
}

/**
 * The key of a recorded CA certificate, found by its CKA_ID and checked
 * against the certificate (after Boulder's issuance/issuer.go start-up
 * check). Two keys with its label are an error that names the label.
 */
export async function findRecordedKey(provider: KeyProvider, record: CaCertificateRecord): Promise<KeyHandle | undefined> {
  await provider.findKey(record.keyLabel);
  const key = await provider.findKeyById(record.keyId);
  if (!key) return undefined;
  const recorded = createPublicKey({ key: record.publicKey, format: 'der', type: 'spki' });
  const certified = new NodeCertificate(record.der).publicKey;
  if (!recorded.equals(key.publicKey) || !certified.equals(key.publicKey)) {
    throw new HierarchyError(`the key "${key.label}" (CKA_ID ${record.keyId.toString('hex')}) in the token does not match the ${caSlug(record.role, record.generation)} CA certificate ${record.serial}`);
  }
  return key;
}

/**
 * Loads the hierarchy recorded in the database and finds each key in the
 * token by its recorded CKA_ID; refuses to start when the key of an active
 * intermediate is missing or does not match its certificate. With
 * `allowOfflineRoot`, a missing root key is accepted: the root signs only
 * the intermediates and its CRL, so `serve` runs without it. A retired
 * intermediate whose key is gone can no longer sign its CRL: the caller warns.
 */
export async function loadHierarchy(provider: KeyProvider, crypto: Crypto, store: HierarchyStore, options: { allowOfflineRoot?: boolean } = {}): Promise<Hierarchy> {
  const records = (await store.caCertificates.all()).filter((r) => r.role !== 'audit');
  if (!records.some((r) => r.role === 'root')) throw new HierarchyError('the database holds no CA hierarchy: run "devid-ca init"');
  const issuers: Issuer[] = [];
  for (const record of records) {
    const key = await findRecordedKey(provider, record);
    const mayBeOffline = (record.role === 'root' && options.allowOfflineRoot) || !record.active;
    if (!key && !mayBeOffline) {
      throw new HierarchyError(`the token holds no key with the recorded CKA_ID ${record.keyId.toString('hex')} ("${record.keyLabel}") for the ${caSlug(record.role, record.generation)} CA`);
    }
    const certificate = new x509.X509Certificate(new Uint8Array(record.der));
    issuers.push(new Issuer(record, certificate, key ? new Signer(provider, key) : undefined, crypto));
  }
  const hierarchy = new Hierarchy(issuers);
  for (const role of ['root', 'factory', 'operational'] as const) hierarchy.active(role);
  return hierarchy;
}
