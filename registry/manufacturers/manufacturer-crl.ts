import { verify as nodeVerify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { sha256Hex } from '../../ca/digest.ts';
import { checkCertificate } from '../../pki/certificate-key.ts';
import { normalizeSerialHex } from '../../pki/attestation/birth-chain.ts';
import { conflict, malformed, notFound } from '../../errors/domain-error.ts';
import type { CrlEntry } from '../../store/manufacturer-store.ts';
import type { ManufacturerCrlStore } from '../../store/subsets.ts';
import type { CertificateRecord, RevocationReason } from '../../store/types.ts';
import type { Audited, AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { readCrl, type ReadCrl } from './crl-reader.ts';
import { DEVICE_TRANSITIONS } from '../lifecycle/device-states.ts';
import { MAX_CRL_BYTES } from './manufacturers.ts';
import { REVOCATION_REASON_NAMES, reasonName, revokeDevices } from '../lifecycle/revocation.ts';
import type { RevocationListener } from '../lifecycle/revocation-service.ts';

/** A CRL's thisUpdate may be this far ahead of our clock. */
const CLOCK_SKEW_MS = 5 * 60_000;
const FETCH_TIMEOUT_MS = 15_000;

export interface CrlApplied {
  /** false: the CRL was the one already in force (only the check time moved). */
  changed: boolean;
  /** Entries of the CRL applied; null when it was the one in force (not parsed again). */
  entries: number | null;
  /** Devices quarantined because their birth certificate is newly listed. */
  quarantined: string[];
}

/** The DER of a CRL given as DER or PEM, without parsing it. */
function crlDer(bytes: Buffer): Buffer {
  const text = bytes.subarray(0, 64).toString('latin1');
  if (!text.includes('-----BEGIN')) return bytes;
  const body = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(bytes.toString('latin1'));
  if (!body) throw malformed('not an X.509 CRL (DER or PEM)');
  return Buffer.from(body[1]!.replace(/\s/g, ''), 'base64');
}

/** Signature algorithms of CRLs this CA checks, by OID, with node's hash (null: EdDSA signs the message itself). */
const SIGNATURE_HASHES: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', '1.2.840.10045.4.3.3': 'sha384', '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', '1.2.840.113549.1.1.12': 'sha384', '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};

/** Whether `certificate` (DER) signed the CRL: its subject is the CRL's issuer, byte for byte, and its key verifies the signature. */
function signedBy(crl: ReadCrl, certificate: Buffer): boolean {
  const subject = Buffer.from(AsnConvert.serialize(AsnConvert.parse(certificate, Certificate).tbsCertificate.subject));
  if (!subject.equals(crl.issuer)) return false;
  const hash = SIGNATURE_HASHES[crl.signatureAlgorithm];
  if (hash === undefined) throw malformed(`the CRL's signature algorithm ${crl.signatureAlgorithm} is not one this CA checks`);
  try {
    // A certificate whose key is refused (checkCertificate throws) signed nothing.
    return nodeVerify(hash, crl.tbs, checkCertificate(certificate).key.key, crl.signature);
  } catch {
    return false;
  }
}

/**
 * Applies a manufacturer's CRL (docs/operators/manufacturers.md): it must be signed by one
 * of the manufacturer's active certificates, not from the future, and not
 * older than the one in force (a lower CRL number or thisUpdate is a
 * replay). Its entries replace the previous ones; each birth certificate
 * it newly lists that a device attested with quarantines the device and
 * revokes its operational certificates, in the same transaction, with the
 * CRL as the evidence in the device's history. A CRL can only take trust
 * away, so one operator (or the poller) may apply it.
 */
export async function applyManufacturerCrl(
  store: ManufacturerCrlStore, audit: AuditLog, published: RevocationListener, id: string, bytes: Buffer, source: 'url' | 'upload', actor: string, now: Date,
): Promise<CrlApplied> {
  if (bytes.length > MAX_CRL_BYTES) throw malformed(`the CRL is larger than ${MAX_CRL_BYTES} bytes`);
  const der = crlDer(bytes);
  const crlSha256 = sha256Hex(der);
  const manufacturer = await store.manufacturers.find(id);
  if (!manufacturer) throw notFound(`no manufacturer ${id}`);
  if (manufacturer.status !== 'active' || !manufacturer.active) throw conflict(`manufacturer ${id} is ${manufacturer.status}: its CRL is not read`);
  // The same bytes as the CRL in force were verified then: a poll that finds nothing new parses nothing (a large CRL costs seconds of CPU).
  if (manufacturer.crl.sha256 === crlSha256) {
    await store.manufacturers.setCrlState(id, { checkedAt: now, error: null });
    return { changed: false, entries: null, quarantined: [] };
  }
  const crl = readCrl(der);
  const { number } = crl;
  const issuing = manufacturer.active.certificates.map((b64) => Buffer.from(b64, 'base64')).find((certificate) => signedBy(crl, certificate));
  const issuerSha256 = issuing ? sha256Hex(issuing) : undefined;
  if (!issuerSha256) throw malformed(`the CRL is not signed by a certificate of manufacturer ${id}`);
  if (crl.thisUpdate.getTime() > now.getTime() + CLOCK_SKEW_MS) throw malformed(`the CRL's thisUpdate ${crl.thisUpdate.toISOString()} is in the future`);
  // One entry per serial (a CRL that lists one twice keeps the first), as the entries table holds them.
  const bySerial = new Map<string, CrlEntry>();
  for (const e of crl.entries) {
    const serialHex = normalizeSerialHex(e.serialHex);
    if (!bySerial.has(serialHex)) bySerial.set(serialHex, { serialHex, revokedAt: e.revokedAt, reason: e.reason });
  }
  const entries = [...bySerial.values()];

  const result = await audit.record(store, async (tx): Promise<Audited<{ changed: boolean; entries: number | null; quarantined: string[]; revoked: CertificateRecord[] }>> => {
    const current = (await tx.manufacturers.findForUpdate(id))!;
    const state = current.crl;
    if (state.sha256 === crlSha256) {
      // Applied by another request since the check above: the same answer as there.
      await tx.manufacturers.setCrlState(id, { checkedAt: now, error: null });
      return { value: { changed: false, entries: null, quarantined: [] as string[], revoked: [] as CertificateRecord[] }, events: [] };
    }
    // A replay is an older CRL of the same issuer; another issuer's CRL (a new configuration) starts afresh.
    const sameIssuer = state.issuerSha256 === issuerSha256;
    const older = sameIssuer && ((state.number !== null && number !== null && number < BigInt(state.number)) || (state.thisUpdate !== null && crl.thisUpdate < state.thisUpdate));
    if (older) throw conflict(`the CRL (number ${number ?? '-'}, thisUpdate ${crl.thisUpdate.toISOString()}) is older than the one in force (number ${state.number ?? '-'}, thisUpdate ${state.thisUpdate?.toISOString()})`);
    await tx.manufacturers.setCrlState(id, {
      issuerSha256, number: number === null ? null : number.toString(), sha256: crlSha256, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate ?? null, checkedAt: now, error: null,
    });
    const listed = await tx.manufacturers.replaceCrlEntries(id, entries);
    const evidence = { manufacturer: id, crlNumber: number?.toString() ?? null, crlSha256, crlThisUpdate: crl.thisUpdate.toISOString(), source };
    const events: AuditEntry[] = [{ action: 'manufacturer.crl-applied', actor, data: { ...evidence, entries: entries.length, newEntries: listed.length } }];
    const births = await tx.claims.birthsBySerial(id, issuerSha256!, listed);
    const byEntry = new Map(entries.map((e) => [e.serialHex, e]));
    for (const birth of births) {
      const entry = byEntry.get(birth.serialHex)!;
      await tx.claims.markBirthRevoked(birth.sha256, entry.revokedAt, entry.reason);
      events.push({ action: 'device.birth-revoked', actor, device: birth.deviceSerial, data: { ...evidence, path: 'manufacturing', birthSerial: birth.serialHex, birthSha256: birth.sha256, reason: entry.reason === null ? null : reasonName(entry.reason) } });
    }
    const serials = births.map((b) => b.deviceSerial);
    const moved = await tx.devices.transitionMany(serials, DEVICE_TRANSITIONS.quarantine.from, 'quarantined', now);
    events.push(...moved.map(({ serial, from }) => ({ action: 'device.quarantined', actor, device: serial, data: { ...evidence, path: 'manufacturing', previousState: from } })));
    const reasons = new Set(births.map((b) => byEntry.get(b.serialHex)!.reason));
    // The manufacturer's reason when it is one we give, else keyCompromise: the device's factory identity can no longer be trusted.
    const only = reasons.size === 1 ? [...reasons][0] : undefined;
    const reason = (only !== undefined && only !== null && (REVOCATION_REASON_NAMES as readonly string[]).includes(reasonName(only)) ? reasonName(only) : 'keyCompromise') as RevocationReason;
    const revocations = await revokeDevices(tx, serials, reason, actor, now);
    events.push(...revocations.events);
    return { value: { changed: true, entries: entries.length, quarantined: serials, revoked: revocations.revoked }, events };
  });
  await published.revoked(result.revoked);
  return { changed: result.changed, entries: result.entries, quarantined: result.quarantined };
}

/** GETs a CRL over HTTP(S), bounded in time and size. */
export async function fetchCrl(url: string): Promise<Buffer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const length = Number(response.headers.get('content-length') ?? 0);
  if (length > MAX_CRL_BYTES) throw new Error(`${url} sends ${length} bytes, more than ${MAX_CRL_BYTES}`);
  // Read as it streams and stop at the limit: a body without Content-Length must not fill the memory.
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > MAX_CRL_BYTES) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`${url} sent more than ${MAX_CRL_BYTES} bytes`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/**
 * Applications of one manufacturer's CRL (the poller, a read on request, an
 * upload), one at a time in this process, each fetch included. Two reads
 * that overlap fetch two CRLs, and the one fetched first may be applied
 * last: it is then older than the CRL in force and refused as a replay, so
 * an operator's "read it now" could fail when a poll overlapped it. In
 * turn, a read fetches after the previous application and finds that CRL or
 * a newer one. Only the first worker polls; a read in another worker may
 * still overlap a poll.
 */
export class ManufacturerCrlQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `work` once the work queued before it for manufacturer `id` has ended, however it ended. */
  run<T>(id: string, work: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(id) ?? Promise.resolve()).then(work);
    const tail = result.then(() => undefined, () => undefined);
    this.#tails.set(id, tail);
    void tail.then(() => {
      if (this.#tails.get(id) === tail) this.#tails.delete(id);
    });
    return result;
  }
}

/**
 * Reads the CRL of every active manufacturer whose CRL comes from a URL;
 * a failure is recorded on the manufacturer (and shown by the API and the
 * console) while the CRL in force stays. Attestations are refused once the
 * CRL in force is past its nextUpdate (fail closed).
 */
export async function pollManufacturerCrls(
  store: ManufacturerCrlStore, audit: AuditLog, published: RevocationListener, queue: ManufacturerCrlQueue, now: () => Date, onError: (id: string, err: unknown) => void,
): Promise<void> {
  for (const manufacturer of await store.manufacturers.polled()) {
    const crl = manufacturer.active!.crl as { url: string };
    await queue.run(manufacturer.id, async () => {
      try {
        await applyManufacturerCrl(store, audit, published, manufacturer.id, await fetchCrl(crl.url), 'url', 'system', now());
      } catch (err) {
        onError(manufacturer.id, err);
        const message = err instanceof Error ? err.message : String(err);
        await store.manufacturers.setCrlState(manufacturer.id, { checkedAt: now(), error: message.slice(0, 500) }).catch(() => undefined);
      }
    });
  }
}
