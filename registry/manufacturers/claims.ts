import { verify as nodeVerify } from 'node:crypto';
import canonicalize from 'canonicalize';
import { sha256Hex } from '../../ca/digest.ts';
import { AttestationError } from '../../pki/attestation/attestation-object.ts';
import { checkCertificate } from '../../pki/certificate-key.ts';
import type { CheckedKey } from '../../pki/public-key.ts';
import { MAX_BIRTH_CHAIN, namesADevice, validateBirthChain, validatePath } from '../../pki/attestation/birth-chain.ts';
import { conflict, malformed, notFound } from '../../errors/domain-error.ts';
import type { ClaimRecord, ClaimSource } from '../../store/claim-store.ts';
import type { ManufacturerRecord } from '../../store/manufacturer-store.ts';
import type { ClaimingStore, ClaimWrites } from '../../store/subsets.ts';
import type { DeviceRecord } from '../../store/types.ts';
import type { AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { checkModelName, checkBatch, checkSerial } from '../identifiers.ts';
import { pemCertificates, trustOf, type ManufacturerTrust } from './manufacturers.ts';
import type { Principal } from '../lifecycle/support-grants.ts';

/** Devices per manifest: one request, one transaction, one answer. */
export const MAX_MANIFEST_DEVICES = 10_000;

export interface ClaimedDevice {
  serial: string;
  model: string;
  /** null: the device is claimed by (manufacturer, serial), for formats whose leaf certificate is made fresh for each key (apple, android-key). */
  birthCertificateSha256: string | null;
  batch?: string;
  /** The birth certificate itself (PEM), when the manifest carries it: checked against the hash, the anchor and the serial. */
  birthCertificate?: string;
}

function checkSha256(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value)) throw malformed(`${field} is a SHA-256 in hex (64 digits)`);
  return value.toLowerCase();
}

/** One manifest or claim line, checked: serial, model, birth certificate hash, optional batch. */
export function checkClaimedDevice(value: unknown, where: string): ClaimedDevice {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${where} is {"serial", "model", "birthCertificateSha256"?, "batch"?, "birthCertificate"?}`);
  const { serial, model, birthCertificateSha256, batch, birthCertificate, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw malformed(`${where} has the unknown field ${JSON.stringify(Object.keys(rest)[0]!.slice(0, 64))}`);
  const at = (fn: () => string) => {
    try {
      return fn();
    } catch (err) {
      throw malformed(`${where}: ${(err as Error).message}`);
    }
  };
  if (birthCertificate !== undefined && (birthCertificateSha256 === undefined || birthCertificateSha256 === null)) throw malformed(`${where}: a birthCertificate needs its birthCertificateSha256`);
  return {
    serial: at(() => checkSerial(serial)),
    model: at(() => checkModelName(model)),
    birthCertificateSha256: birthCertificateSha256 === undefined || birthCertificateSha256 === null ? null : checkSha256(birthCertificateSha256, `${where}.birthCertificateSha256`),
    ...(batch === undefined ? {} : { batch: at(() => checkBatch(batch)) }),
    ...(birthCertificate === undefined ? {} : { birthCertificate: checkPemText(birthCertificate, `${where}.birthCertificate`) }),
  };
}

function checkPemText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length > 16_384) throw malformed(`${field} is the birth certificate in PEM (then any intermediates), at most 16 KiB`);
  return value;
}

/**
 * A birth certificate the manifest carries: its SHA-256 is the one listed,
 * it chains to the manufacturer and names the listed serial, so a manifest
 * that contradicts its own certificates claims nothing.
 */
function checkListedCertificate(device: ClaimedDevice, where: string, trust: ManufacturerTrust, now: Date): void {
  // The birth certificate, then any intermediates its manufacturer did not register.
  const chain = pemCertificates(device.birthCertificate!, `${where}.birthCertificate`);
  if (chain.length > MAX_BIRTH_CHAIN) throw malformed(`${where}.birthCertificate holds at most ${MAX_BIRTH_CHAIN} certificates`);
  if (sha256Hex(chain[0]!) !== device.birthCertificateSha256) throw malformed(`${where}: birthCertificateSha256 is not the SHA-256 of its birthCertificate`);
  try {
    const birth = validateBirthChain(chain, trust.anchors, now, trust.withdrawn);
    if (birth.identity.serial !== device.serial) throw malformed(`${where}: the birth certificate names device ${birth.identity.serial}, not ${device.serial}`);
  } catch (err) {
    if (err instanceof AttestationError) throw malformed(`${where}.birthCertificate: ${err.detail}`);
    throw err;
  }
}

/** The hash the key signs with, as OpenSSL's `dgst -sign` for that key would (Ed25519 signs the message itself). */
function hashFor(key: CheckedKey): string | null {
  if (key.kind === 'ed25519') return null;
  return key.curve === 'P-384' ? 'sha384' : 'sha256';
}

/** The manufacturer, in force (404 unknown, 409 pending or withdrawn): claims and statements need one that vouches for devices. */
export function activeManufacturer(manufacturer: ManufacturerRecord | undefined, id: string): ManufacturerRecord {
  if (!manufacturer) throw notFound(`no manufacturer ${id}`);
  if (manufacturer.status !== 'active' || !manufacturer.active) throw conflict(`manufacturer ${id} is ${manufacturer.status}: it vouches for no device`);
  return manufacturer;
}

/**
 * A signature over data by `signerPem` (the signing certificate, then any
 * intermediates), which must chain to the manufacturer's root through
 * certificates it still trusts, and must not name a device (no
 * HardwareModuleName, no subject serialNumber): a device's birth key signs
 * attestations, never manifests. Returns the signing certificate's SHA-256.
 */
export function verifyManufacturerSignature(trust: ManufacturerTrust, data: Buffer, signature: unknown, signerPem: unknown, now: Date): string {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(signature) || signature.length > 2048) throw malformed('signature is base64');
  if (typeof signerPem !== 'string' || signerPem.length > 32_768) throw malformed('signer is the signing certificate in PEM, then any intermediates');
  const chain = pemCertificates(signerPem, 'signer');
  checkSigner(chain, trust, now, false, 'the signer');
  // The path check refused a bad key already; the checked key is what we verify with.
  const { key } = checkCertificate(chain[0]!);
  let valid = false;
  try {
    valid = nodeVerify(hashFor(key), data, key.key, Buffer.from(signature, 'base64'));
  } catch {
    valid = false;
  }
  if (!valid) throw malformed('the signature does not verify with the signer\'s key over the RFC 8785 canonical JSON of devices');
  return sha256Hex(chain[0]!);
}

/**
 * The signing certificate chains to the manufacturer and is not a device's
 * (see verifyManufacturerSignature); `directlyUnderRoot` (ownership
 * statements) also asks that a registered root issued it itself, as a CA's
 * audit key. Malformed otherwise.
 */
export function checkSigner(chain: Buffer[], trust: ManufacturerTrust, at: Date, directlyUnderRoot: boolean, name: string): void {
  let path: string[];
  try {
    path = validatePath(chain, trust.anchors, at, name, trust.withdrawn);
  } catch (err) {
    if (err instanceof AttestationError) throw malformed(`${name} does not chain to the manufacturer: ${err.detail}`);
    throw err;
  }
  if (namesADevice(chain[0]!)) throw malformed(`${name} is a device's certificate (it names a device serial): devices do not sign for their manufacturer`);
  if (directlyUnderRoot && path.length !== 1) throw malformed(`${name} must be certified by the root itself, as a CA's audit key is`);
}

export interface ClaimBatch<S = ClaimWrites> {
  manufacturer: string;
  devices: ClaimedDevice[];
  source: ClaimSource;
  manifestSha256: string | null;
  /** The owner the claim records (an ownership statement's `to`). */
  owner?: string;
  /** Events recorded after the claims (the manifest import, the statement). */
  events?: AuditEntry[];
  /** More writes in the claim's transaction (an imported statement chain). */
  afterClaim?: (tx: S) => Promise<void>;
}

/**
 * Claims devices of an active manufacturer, all or nothing: each model must
 * be one the manufacturer vouches for, no serial may be registered and no
 * birth certificate claimed already. Each device record is created
 * `manufactured`, its history starting with `device.claimed`.
 */
export async function claimDevices<S extends ClaimWrites>(store: ClaimingStore<S>, audit: AuditLog, who: Principal, batch: ClaimBatch<S>, now: Date): Promise<number> {
  return audit.record(store, async (tx) => {
    // Locked: a withdrawal either commits first (and the claim is refused) or waits, then quarantines these devices too.
    const config = activeManufacturer(await tx.manufacturers.findForUpdate(batch.manufacturer), batch.manufacturer).active!;
    const outside = batch.devices.find((d) => !config.models.includes(d.model));
    if (outside) throw conflict(`manufacturer ${batch.manufacturer} may not vouch for model ${outside.model} (device ${outside.serial})`);
    const taken = await tx.claims.existingHashes(batch.devices.flatMap((d) => (d.birthCertificateSha256 === null ? [] : [d.birthCertificateSha256])));
    if (taken.length > 0) throw conflict(`the birth certificate ${taken[0]} is claimed already`);
    const devices: DeviceRecord[] = batch.devices.map((d) => ({
      serial: d.serial, model: d.model, batch: d.batch ?? batch.manufacturer, line: batch.manufacturer, manufacturer: batch.manufacturer,
      deviceClass: null, owner: batch.owner ?? null, state: 'manufactured', factoryKeySha256: null, reprovisionAllowed: false, signCount: 0,
      factoryAttestedAt: null, createdAt: now, updatedAt: now,
    }));
    for (const device of devices) {
      if (await tx.devices.find(device.serial)) throw conflict(`device ${device.serial} is registered already`);
      await tx.devices.insert(device);
    }
    const claims: ClaimRecord[] = batch.devices.map((d) => ({
      deviceSerial: d.serial, manufacturer: batch.manufacturer, birthCertificateSha256: d.birthCertificateSha256, source: batch.source,
      manifestSha256: batch.manifestSha256, claimedBy: who.principal, claimedAt: now, supersededAt: null,
    }));
    await tx.claims.insert(claims);
    await batch.afterClaim?.(tx);
    // device.claimed first: the claim is the first event of the device's history.
    const events: AuditEntry[] = [
      ...batch.devices.map((d) => ({
        action: 'device.claimed', actor: who.actor, device: d.serial,
        data: { manufacturer: batch.manufacturer, model: d.model, batch: d.batch ?? batch.manufacturer, birthCertificateSha256: d.birthCertificateSha256, source: batch.source, principal: who.principal, ...(batch.manifestSha256 ? { manifestSha256: batch.manifestSha256 } : {}), ...(batch.owner ? { owner: batch.owner } : {}) },
      })),
      ...(batch.events ?? []),
    ];
    return { value: claims.length, events };
  });
}

/**
 * POST /operator/v1/manufacturers/<id>/manifests: the manufacturer's list
 * of devices sold to us, optionally signed (over the RFC 8785 canonical
 * JSON of `devices`) by a certificate that chains to the manufacturer.
 * A duplicate serial or birth certificate, a bad signature, or any
 * device that cannot be claimed refuses the whole manifest.
 */
export async function importManifest(store: ClaimingStore, audit: AuditLog, who: Principal, manufacturer: string, body: { devices?: unknown; signature?: unknown; signer?: unknown }, now: Date): Promise<{ claimed: number; manifestSha256: string }> {
  if (!Array.isArray(body.devices) || body.devices.length === 0 || body.devices.length > MAX_MANIFEST_DEVICES) throw malformed(`devices is a list of 1 to ${MAX_MANIFEST_DEVICES} devices`);
  const devices = body.devices.map((d, i) => checkClaimedDevice(d, `devices[${i}]`));
  const seen = new Set<string>();
  for (const d of devices) {
    for (const key of [`serial ${d.serial}`, ...(d.birthCertificateSha256 === null ? [] : [`birth certificate ${d.birthCertificateSha256}`])]) {
      if (seen.has(key)) throw malformed(`the manifest lists the ${key} twice`);
      seen.add(key);
    }
  }
  const canonical = Buffer.from(canonicalize(body.devices) ?? '', 'utf8');
  const manifestSha256 = sha256Hex(canonical);
  const trust = trustOf(activeManufacturer(await store.manufacturers.find(manufacturer), manufacturer));
  devices.forEach((d, i) => d.birthCertificate !== undefined && checkListedCertificate(d, `devices[${i}]`, trust, now));
  let signer: string | null = null;
  if (body.signature !== undefined || body.signer !== undefined) signer = verifyManufacturerSignature(trust, canonical, body.signature, body.signer, now);
  const claimed = await claimDevices(store, audit, who, {
    manufacturer, devices, source: 'manifest', manifestSha256,
    events: [{ action: 'manufacturer.manifest-imported', actor: who.actor, data: { manufacturer, manifestSha256, devices: devices.length, signed: signer !== null, signerSha256: signer, principal: who.principal } }],
  }, now);
  return { claimed, manifestSha256 };
}
