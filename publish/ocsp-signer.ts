import { wholeSeconds } from '../ca/der.ts';
import type { OcspPresigner } from '../ca/issuance.ts';
import type { OcspResponseRecord, OcspSubject } from '../store/ocsp-store.ts';
import type { OcspRefreshStore } from '../store/subsets.ts';
import { CERT_ID_HASHES, HASH_ALGORITHMS, type CertIdHash, type IssuerCertIds, type IssuerDirectory } from './cert-ids.ts';
import { basicResponse, certIdDer, responseData, singleResponse, type CertStatus } from './ocsp-der.ts';
import type { OcspResponders } from './ocsp-responders.ts';
import { OCSP_REFRESH_AFTER_MS, OCSP_VALIDITY_MS } from './ocsp-validity.ts';

/** Signatures between two turns of the event loop when signing many. */
export const YIELD_EVERY = 32;
/** Responses of expired certificates are deleted this often, not every round: a few more seconds of one changes nothing. */
const PURGE_EVERY_MS = 60_000;

export function statusOf(subject: Pick<OcspSubject, 'revokedAt' | 'revocationReason'>): CertStatus {
  return subject.revokedAt ? { status: 'revoked', revokedAt: subject.revokedAt, reason: subject.revocationReason ?? 0 } : { status: 'good' };
}

/** The CA has no responder that can sign here now (its key is not in this token, or it ends too soon). */
export class NoResponderError extends Error {
  override readonly name = 'NoResponderError';
}

/**
 * Signs OCSP responses in the HSM with the issuing CA's delegated responder
 * key (RFC 6960 basic responses, RFC 6960 4.2.2.2; the responder's
 * certificate rides along in `certs`): one per CertID hash for every
 * certificate, at issuance, at revocation and before nextUpdate, so that
 * answering a request is a lookup. Also signs the rare answers that cannot
 * be made in advance (several certificates in one request, unknown serials).
 */
export class OcspSigner implements OcspPresigner {
  /** When expired responses were last deleted (ms since the epoch, on the injected clock). */
  private purgedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly directory: IssuerDirectory,
    private readonly responders: OcspResponders,
    private readonly clock: () => Date,
  ) {}

  /** Whether responses for this CA can be signed here now. */
  canSign(issuerId: number): boolean {
    return this.responders.get(issuerId) !== undefined;
  }

  /**
   * Both responses (SHA-1 and SHA-256 CertIDs) for a certificate's current
   * status; without a responder here, a row left for the background signer.
   */
  async presign(subject: OcspSubject): Promise<OcspResponseRecord> {
    const ids = this.issuer(subject.issuerId);
    if (!this.canSign(subject.issuerId)) {
      return { serial: subject.serial, issuerId: subject.issuerId, notAfter: subject.notAfter, sha1: null, sha256: null, thisUpdate: null, nextUpdate: null };
    }
    const now = this.clock();
    const thisUpdate = wholeSeconds(now);
    const nextUpdate = new Date(thisUpdate.getTime() + OCSP_VALIDITY_MS);
    const serial = Buffer.from(subject.serial, 'hex');
    const status = statusOf(subject);
    const signed = {} as Record<CertIdHash, Buffer>;
    for (const hash of CERT_ID_HASHES) {
      const single = singleResponse(this.certId(ids, hash, serial), status, thisUpdate, nextUpdate);
      signed[hash] = await this.sign(ids, [single], thisUpdate);
    }
    return { serial: subject.serial, issuerId: subject.issuerId, notAfter: subject.notAfter, sha1: signed.sha1, sha256: signed.sha256, thisUpdate, nextUpdate };
  }

  /** A response made on request: its SingleResponses, signed now. */
  async sign(ids: IssuerCertIds, singles: readonly Buffer[], producedAt: Date): Promise<Buffer> {
    const responder = this.responders.get(ids.issuer.id);
    if (!responder) throw new NoResponderError(`no OCSP responder for the ${ids.issuer.slug} CA in this process`);
    const tbs = responseData(responder.keyHash, producedAt, singles);
    return basicResponse(tbs, await responder.signer.sign(tbs), [responder.record.der]);
  }

  certId(ids: IssuerCertIds, hash: CertIdHash, serial: Buffer): Buffer {
    return certIdDer(HASH_ALGORITHMS[hash], ids.hashes[hash].nameHash, ids.hashes[hash].keyHash, serial);
  }

  /**
   * One round of the background signer: responses marked stale by a
   * revocation (in any process) and those due before nextUpdate; returns
   * what it signed so the caller's cache takes it at once.
   */
  async refreshDue(store: OcspRefreshStore, limit: number): Promise<OcspResponseRecord[]> {
    const now = this.clock();
    if (now.getTime() - this.purgedAt >= PURGE_EVERY_MS || now.getTime() < this.purgedAt) {
      await store.ocsp.deleteExpired(now);
      this.purgedAt = now.getTime();
    }
    const refreshBefore = this.responders.refreshBefore(new Date(now.getTime() - OCSP_REFRESH_AFTER_MS));
    // Most rounds find nothing: a plain read says so without a transaction.
    if (!(await store.ocsp.anyDue(now, refreshBefore))) return [];
    return store.transaction(async (tx) => {
      const due = await tx.ocsp.due(now, refreshBefore, limit);
      const signed: OcspResponseRecord[] = [];
      for (const subject of due) {
        signed.push(await this.presign(subject));
        // C_Sign is synchronous: a round of a thousand signatures must not hold OCSP and enrollments up.
        if (signed.length % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await tx.ocsp.putMany(signed);
      return signed;
    });
  }

  private issuer(issuerId: number): IssuerCertIds {
    const ids = this.directory.get(issuerId);
    if (!ids) throw new Error(`no CA with id ${issuerId} in this hierarchy`);
    return ids;
  }
}
