import { AsnConvert } from '@peculiar/asn1-schema';
import { Extensions, SubjectAlternativeName, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { OID } from '../../ca/asn1.ts';
import { operationalProfile } from '../../ca/profiles.ts';
import { DomainError } from '../../errors/domain-error.ts';
import type { AuditEntry } from '../../registry/audit-log.ts';
import { mayEnroll, moveDevice } from '../../registry/device-states.ts';
import { LOCKS } from '../../store/locks.ts';
import type { Store } from '../../store/store.ts';
import { StoreConflictError, type AcmeOrderRecord, type CertificateRecord, type DeviceRecord } from '../../store/types.ts';
import { sha256Hex } from '../../ca/digest.ts';
import { verifyCsr, type VerifiedCsr } from '../../pki/csr.ts';
import { accountOf, type AcmeCall, type AcmeHandler } from './context.ts';
import { jsonPayload } from './jws.ts';
import { ownOrder } from './order.ts';
import { AcmeProblem, acmeProblem } from './problems.ts';
import { ORDER_MOVES } from './states.ts';
import { orderView } from './views.ts';

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** Extensions a CSR may request without effect (the profile decides them), as ACME libraries add them: no names. */
const IGNORED_REQUESTS = new Set<string>([OID.keyUsage, OID.extKeyUsage, OID.basicConstraints, OID.subjectKeyIdentifier]);

const badCsr = (detail: string) => new AcmeProblem('badCSR', 400, detail);

/**
 * docs/reference/certificates.md: the CA sets subject and SANs from the order; a CSR may
 * carry only CN=<serial> and/or the PermanentIdentifier of that serial. Key
 * usage requests are ignored (the profile sets them); anything else is badCSR.
 */
function checkCsrNames(csr: VerifiedCsr, serial: string): void {
  const info = csr.request.certificationRequestInfo;
  for (const rdn of info.subject) {
    for (const attribute of rdn) {
      const value = attribute.value.utf8String ?? attribute.value.printableString;
      if (attribute.type !== OID.commonName || value !== serial) throw badCsr(`the CSR subject may only be CN=${serial}`);
    }
  }
  for (const attribute of info.attributes) {
    if (attribute.type !== EXTENSION_REQUEST || attribute.values.length !== 1) throw badCsr('the CSR may carry no attribute but an extension request');
    const extensions = AsnConvert.parse(attribute.values[0]!, Extensions);
    for (const extension of extensions) {
      if (IGNORED_REQUESTS.has(extension.extnID)) continue;
      if (extension.extnID !== id_ce_subjectAltName) throw badCsr(`the CSR may not request extension ${extension.extnID}`);
      const names = AsnConvert.parse(extension.extnValue.buffer, SubjectAlternativeName);
      for (const name of names) {
        if (name.otherName?.typeId !== OID.permanentIdentifier || permanentIdentifierValue(name.otherName.value) !== serial) {
          throw badCsr(`the CSR subjectAltName may only be the PermanentIdentifier ${serial}`);
        }
      }
    }
  }
}

/** identifierValue of a PermanentIdentifier (RFC 4043), or undefined when it is anything else. */
function permanentIdentifierValue(value: ArrayBuffer): string | undefined {
  const parsed = asn1js.fromBER(value);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return undefined;
  const [first, ...rest] = parsed.result.valueBlock.value;
  return rest.length === 0 && first instanceof asn1js.Utf8String ? first.valueBlock.value : undefined;
}

/** Marks the order invalid with the problem (releasing its claim), then refuses with it. */
async function refuse(call: AcmeCall, order: AcmeOrderRecord, problem: AcmeProblem, events: AuditEntry[] = []): Promise<never> {
  await call.deps.audit.record(call.deps.store, async (tx) => {
    await tx.acme.moveOrder(order.id, ORDER_MOVES.invalidated.from, ORDER_MOVES.invalidated.to, call.now, { error: problem.document() });
    return { value: undefined, events };
  });
  throw problem;
}

/** The unique index that keeps one operational key to one certificate. */
const ONE_KEY_INDEX = 'certificates_one_operational_key';

/**
 * Why the order may not become a certificate now, though it was ready: the
 * device may no longer enroll (suspended, quarantined, decommissioned), or
 * the certificate its attestation rested on was revoked, replaced by a
 * reprovisioning, or superseded; or the attested key was certified
 * meanwhile by another order. Checked inside the issuance transaction,
 * under the device's lock, so no operator action can fall between the
 * check and the certificate.
 */
async function basisProblem(tx: Store, order: AcmeOrderRecord, device: DeviceRecord, spki: Buffer, now: Date): Promise<AcmeProblem | undefined> {
  const refused = (detail: string) => acmeProblem.unauthorized(`device ${device.serial}: ${detail}; attest again`);
  if (!mayEnroll(device.state)) return acmeProblem.unauthorized(`device ${device.serial} is ${device.state}: enrollment and renewal are refused`);
  if (device.reprovisionAllowed) return refused('it is being reprovisioned and waits for its new birth certificate');
  if (!order.attestedBy) return refused('the order does not record the certificate its attestation rested on');
  const attesting = await tx.certificates.bySha256(order.attestedBy);
  if (attesting) {
    if (attesting.deviceSerial !== device.serial) return refused('the attesting certificate is not this device\'s');
    if (attesting.revokedAt) return refused(`the ${attesting.kind} certificate ${attesting.serial} that attested was revoked`);
    if (attesting.kind === 'birth' && attesting.keySha256 !== device.factoryKeySha256) return refused('its birth certificate changed since it attested');
    if (attesting.kind === 'operational' && attesting.notAfter <= now) return refused(`the operational certificate that attested expired at ${attesting.notAfter.toISOString()}`);
  } else {
    const [birth, claim] = await Promise.all([tx.claims.birthOf(device.serial), tx.claims.find(device.serial)]);
    if (birth?.sha256 !== order.attestedBy) return refused('the birth certificate that attested is no longer the device\'s');
    if (birth.revokedAt) return refused(`its manufacturer revoked the birth certificate ${birth.serialHex}`);
    if (!claim || claim.supersededAt) return refused('its claim was superseded (reprovisioned)');
  }
  // One key, one certificate: another order of this device (or of another) may have certified it since the attestation.
  if ((await tx.certificates.devicesWithKey(sha256Hex(spki))).length > 0) return badCsr('the key is already certified: every operational certificate has a key of its own');
  return undefined;
}

/**
 * The certificate the new one succeeds: the claimed `replaces`, else the
 * newest operational certificate, else the birth certificate (ours, or the
 * other manufacturer's one the device attested with).
 */
async function predecessorOf(tx: Store, order: AcmeOrderRecord): Promise<Pick<CertificateRecord, 'serial' | 'sha256' | 'kind'>> {
  if (order.replaces) return (await tx.certificates.find(order.replaces))!;
  const previous = (await tx.certificates.newestOfDevice(order.deviceSerial, 'operational')) ?? (await tx.certificates.newestOfDevice(order.deviceSerial, 'birth'));
  if (previous) return previous;
  const outside = (await tx.claims.birthOf(order.deviceSerial))!;
  return { serial: outside.serialHex, sha256: outside.sha256, kind: 'birth' };
}

/**
 * POST /acme/order/<id>/finalize {"csr"} (RFC 8555 7.4): the CSR's key must
 * be the key attested for this order and its names at most the device's;
 * else badCSR and the order is invalid. The operational certificate (docs/reference/certificates.md,
 * the device class's TTL, its predecessor), the order, the device
 * (active), its firmware lineage and the audit event commit together.
 */
export const finalize: AcmeHandler = async (call) => {
  const { deps, now } = call;
  const order = await ownOrder(call, call.params.id!);
  if (order.status !== 'ready') throw acmeProblem.orderNotReady(order.status);
  const payload = jsonPayload(call.jws!);
  if (!payload || typeof payload.csr !== 'string') throw acmeProblem.malformed('finalize needs {"csr": base64url DER}');
  let csr: VerifiedCsr;
  try {
    csr = verifyCsr(payload.csr);
    if (!csr.publicKey.spki.equals(order.attestedSpki!)) throw badCsr('the CSR key is not the key the device attested for this order');
    checkCsrNames(csr, order.deviceSerial);
  } catch (err) {
    if (err instanceof AcmeProblem) return refuse(call, order, err);
    if (err instanceof DomainError) return refuse(call, order, badCsr(err.detail));
    throw err;
  }
  const serial = order.deviceSerial;
  const actor = `device:${serial}`;
  let issued: { refused: AcmeProblem } | { valid: AcmeOrderRecord };
  try {
    issued = await deps.audit.record<{ refused: AcmeProblem } | { valid: AcmeOrderRecord }>(deps.store, async (tx) => {
      await tx.lock(LOCKS.device(serial));
      const { device, deviceClass } = await tx.devices.getWithClass(serial);
      // Under the device's lock: what the attestation rested on may have changed since (revocation, reprovisioning, a state change).
      const stale = await basisProblem(tx, order, device, csr.publicKey.spki, now);
      if (stale) return { value: { refused: stale }, events: [] };
      const predecessor = await predecessorOf(tx, order);
      const issuer = deps.hierarchy.operational;
      const profile = operationalProfile({ issuer, spki: csr.publicKey.spki, baseUrl: deps.identity.httpBaseUrl, now }, {
        serial, trustDomain: deps.identity.trustDomain, ttlMs: deviceClass.ttlSeconds * 1000, serverAuth: deviceClass.serverAuth,
        predecessorSha256: Buffer.from(predecessor.sha256, 'hex'), ...(deps.predecessorOid ? { predecessorOid: deps.predecessorOid } : {}),
      });
      const certificate = await deps.issuance.issue(tx, { issuer, profile, deviceSerial: serial, predecessorSha256: predecessor.sha256 });
      await moveDevice(tx, serial, 'enroll', 'device', now);
      if (order.firmware) await tx.firmware.insert({ deviceSerial: serial, ...order.firmware, certificateSerial: certificate.record.serial, attestedAt: now });
      const move = ORDER_MOVES.issued;
      const valid = await tx.acme.moveOrder(order.id, move.from, move.to, now, { certificateSerial: certificate.record.serial });
      if (!valid) throw acmeProblem.orderNotReady('no longer ready');
      return {
        value: { valid },
        events: [{
          action: predecessor.kind === 'birth' ? 'device.enrolled' : 'device.renewed', actor, device: serial,
          data: {
            order: order.id, account: accountOf(call).id, certificateSerial: certificate.record.serial, certificateSha256: certificate.record.sha256,
            issuer: issuer.slug, notAfter: certificate.record.notAfter.toISOString(), class: deviceClass.name,
            predecessorSerial: predecessor.serial, predecessorSha256: predecessor.sha256, predecessorKind: predecessor.kind,
            ...(order.replaces ? { replaces: order.replaces } : {}), ...(order.firmware ? { firmware: order.firmware } : {}),
          },
        }],
      };
    });
  } catch (err) {
    // The unique index on predecessors: another order issued the successor first (a lineage fork).
    if (err instanceof StoreConflictError && err.constraint === ONE_KEY_INDEX) {
      // Another device's order finalized with this key first (the device locks are per device: the index settles it).
      return refuse(call, order, badCsr('the key is certified for another device: every operational certificate has a key of its own'));
    }
    if (err instanceof StoreConflictError) {
      return refuse(call, order, acmeProblem.alreadyReplaced('another order already issued the successor of this certificate'), [
        { action: 'device.lineage-fork', actor, device: serial, data: { order: order.id, reason: 'a second successor was refused by the database' } },
      ]);
    }
    throw err;
  }
  if ('refused' in issued) return refuse(call, order, issued.refused);
  return { status: 200, body: orderView(issued.valid, call.urls), location: call.urls.order(order.id) };
};
