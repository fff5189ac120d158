import type { DeviceName } from '../../ca/profiles.ts';
import type { AttestationChallenge, AttestationEvidence } from '../../pki/attestation/format.ts';
import type { DomainError } from '../../errors/domain-error.ts';
import type { CertificateRecord, DeviceClassRecord, FirmwareReport } from '../../store/types.ts';

/**
 * An enrollment in progress, as the front end holds it (ACME: an order and
 * its authorization): the RA reads it, the front end stores it.
 */
export interface PendingEnrollment {
  /** The front end's id for it (ACME: the order id), recorded in the audit events as `order`. */
  id: string;
  /** The device it is for. */
  serial: string;
  /** The serial of the operational certificate it replaces (RFC 9773), or null. */
  replaces: string | null;
  /** How the certificate names the device, as the order named it; absent: a PermanentIdentifier of the serial. */
  name?: DeviceName;
}

/** Who asks, for the audit log: the actor of events about the request, and what each event names of it (ACME: the account). */
export interface Requester {
  actor: string;
  data: Record<string, unknown>;
}

/**
 * What an accepted attestation established; the front end keeps it with its
 * pending enrollment (ACME: attested_spki, attested_by, firmware on the
 * order) and hands it back for issuance, where it is checked again.
 */
export interface AttestationBasis {
  /** The attested key (canonical SPKI): the CSR must carry it. */
  spki: Buffer;
  /** SHA-256 of the certificate the attestation rested on (x5c[0]). */
  attestedBy: string | null;
  /** The firmware the device reported, recorded in its lineage at issuance. */
  firmware: FirmwareReport | null;
  /** A gateway's part (RFC 7030 3.7): it relayed the attestation (`attested`), or vouched for a device without one (`mediated`). */
  gateway?: GatewayPath;
}

/** The gateway an enrollment came through, authenticated by its certificate (docs/operators/gateways.md). */
export interface GatewayPath {
  serial: string;
  certificateSha256: string;
  assurance: 'attested' | 'mediated';
}

/** Where the RA logs refusals that leave no audit event (the front end's logger). */
export interface EnrollmentLog {
  info(fields: Record<string, unknown>, message: string): void;
}

/** An attestation for a pending enrollment: the statement parsed by its format, and what the device signed over. */
export interface AttestRequest {
  pending: PendingEnrollment;
  requester: Requester;
  /** The statement, parsed by its format (pki/attestation/format.ts). */
  evidence: AttestationEvidence;
  challenge: AttestationChallenge;
  now: Date;
}

/** What an enrollment by certificate (EST, a gateway) ends in: the certificate (a retry's too), or the refusal. */
export type CertificateEnrollment =
  | { ok: true; certificate: CertificateRecord; reissued: boolean }
  | { ok: false; error: DomainError };

/** What every enrollment by certificate names, whatever path it takes (certificate-enrollment.ts, gateway-enrollment.ts). */
export interface CertificateRequestCommon {
  /** The CSR, base64url DER. */
  csr: string;
  /** CSR attribute types the front end checks itself (EST: challengePassword, id-aa-attestation). */
  frontEndAttributes: readonly string[];
  /** The device class the request was addressed to, when the protocol names one (EST's label). */
  className?: string;
  /** Whether the device's class lets it use this protocol; the refusal's reason when not. */
  classRefusal: (deviceClass: DeviceClassRecord) => string | undefined;
  /** Who asks, for the audit log: the protocol and what it names of the request. */
  requester: Pick<Requester, 'data'>;
  now: Date;
}
