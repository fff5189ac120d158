import type { IssuanceStore } from '../store/subsets.ts';
import type { OcspResponseRecord, OcspSubject } from '../store/ocsp-store.ts';
import type { CertificateKind, CertificateRecord } from '../store/types.ts';
import { OID } from './asn1.ts';
import { sha256Hex } from './digest.ts';
import { encodeCertificate, encodeTbsCertificate } from './certificate-der.ts';
import type { Issuer } from './issuer.ts';
import { certificatePem } from './pem.ts';
import { lintProfile, ProfileLintError } from './lint.ts';
import type { Profile } from './profiles.ts';
import { randomSerial } from './serial.ts';

export interface IssueRequest {
  issuer: Issuer;
  profile: Profile;
  deviceSerial: string | null;
  /** SHA-256 (hex) of the certificate this one succeeds (docs/reference/certificates.md). */
  predecessorSha256: string | null;
}

/** A certificate as issued: its DER and the row recorded for it. */
export interface IssuedCertificate {
  der: Buffer;
  record: CertificateRecord;
  pem: string;
}

/** Signs a new certificate's OCSP responses in its issuance transaction (publish/ocsp-signer.ts). */
export interface OcspPresigner {
  presign(subject: OcspSubject): Promise<OcspResponseRecord>;
}

/**
 * The one issuance pipeline for every certificate the CA signs (birth,
 * operational, server, support), after Boulder's issuance/cert.go: lint the
 * profile, draw a serial, encode the TBSCertificate from the issuer's
 * template, sign once in the HSM, record it with its OCSP responses. Without
 * a presigner (ceremonies, tools) the responses are left for the serving
 * process's background signer, which makes them within a second. Call it inside the
 * caller's transaction (AuditLog.record), so the record commits with the
 * action's other writes and its audit event.
 */
export class IssuanceService {
  constructor(
    private readonly clock: () => Date,
    private readonly ocsp?: OcspPresigner,
    /** Told each certificate signed, by kind (metrics). */
    private readonly onIssued?: (kind: CertificateKind) => void,
    /** How many shards each issuer's CRL has now (0: one whole CRL); a new certificate goes to the shard of its serial. */
    private readonly crlShards: (issuer: Issuer) => number = () => 0,
  ) {}

  async issue(tx: IssuanceStore, request: IssueRequest): Promise<IssuedCertificate> {
    const { issuer, profile } = request;
    lintProfile(issuer, profile);
    const serial = randomSerial();
    const { profile: sharded, shard } = this.intoShard(issuer, profile, serial);
    const tbs = encodeTbsCertificate(issuer, sharded, serial);
    const der = encodeCertificate(tbs, await issuer.signTbs(tbs));
    const record: CertificateRecord = {
      serial: serial.toString('hex'),
      kind: profile.kind,
      issuerId: issuer.id,
      deviceSerial: request.deviceSerial,
      subject: profile.subjectText,
      der,
      sha256: sha256Hex(der),
      keySha256: sha256Hex(profile.spki),
      predecessorSha256: request.predecessorSha256,
      notBefore: profile.notBefore,
      notAfter: profile.notAfter,
      revokedAt: null,
      revocationReason: null,
      createdAt: this.clock(),
      crlShard: shard,
    };
    const subject = { serial: record.serial, issuerId: issuer.id, notAfter: record.notAfter, revokedAt: null, revocationReason: null };
    const ocsp = this.ocsp
      ? await this.ocsp.presign(subject)
      : { serial: record.serial, issuerId: issuer.id, notAfter: record.notAfter, sha1: null, sha256: null, thisUpdate: null, nextUpdate: null };
    await tx.certificates.insertIssued(record, ocsp);
    this.onIssued?.(profile.kind);
    return { der, record, pem: certificatePem(der) };
  }

  /** The profile with the CDP of the serial's CRL shard, when the issuer's CRL is sharded (docs/operators/revocation.md). */
  private intoShard(issuer: Issuer, profile: Profile, serial: Buffer): { profile: Profile; shard: number | null } {
    const shards = this.crlShards(issuer);
    if (shards <= 0) return { profile, shard: null };
    const shard = crlShardOf(serial, shards);
    let replaced = false;
    const extensions = profile.extensions.map((e) => {
      if (e.type !== OID.crlDistributionPoints) return e;
      const sharded = issuer.shardCrlDistributionPoints(e, shard);
      replaced ||= sharded !== undefined;
      return sharded ?? e;
    });
    return replaced ? { profile: { ...profile, extensions }, shard } : { profile, shard: null };
  }
}

/** A serial's CRL shard: its value modulo the shard count (serials are random, so shards fill evenly). */
export function crlShardOf(serial: Buffer, shards: number): number {
  return Number(BigInt(`0x${serial.toString('hex') || '0'}`) % BigInt(shards));
}

export { ProfileLintError };
