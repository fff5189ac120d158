import { wholeSeconds } from '../ca/der.ts';
import { sha256Hex } from '../ca/digest.ts';
import type { Issuer } from '../ca/issuer.ts';
import type { CrlRecord } from '../store/crl-store.ts';
import { LOCKS } from '../store/locks.ts';
import type { CrlPublisherStore } from '../store/subsets.ts';
import { CrlEntryWriter, encodeSignedCrl } from './crl-der.ts';

export interface CrlPolicy {
  /** thisUpdate to nextUpdate of the intermediates' CRLs (DEVID_CRL_NEXT_UPDATE, 24 h). */
  validityMs: number;
  /** How long an expired certificate stays listed (DEVID_CRL_EXPIRED_GRACE, 7 days). */
  expiredGraceMs: number;
}

export const DEFAULT_CRL_POLICY: CrlPolicy = { validityMs: 24 * 3600 * 1000, expiredGraceMs: 7 * 24 * 3600 * 1000 };
/** The root's CRL, signed only in a root ceremony: a year (docs/operators/revocation.md). */
export const ROOT_CRL_VALIDITY_MS = 365 * 24 * 3600 * 1000;
/** Revoked entries read per query: a page of rows at a time, never the whole list. */
const PAGE = 10_000;

export interface PublishedCrl {
  record: CrlRecord;
  der: Buffer;
}

/**
 * Builds each CA's CRL (RFC 5280 5, v2, AKI and CRL number): streams the
 * issuer's revoked certificates from the database a page at a time into
 * DER, signs the TBSCertList once in the HSM and stores it. One process at a
 * time per issuer (an advisory lock); the marks revocations leave say when
 * a new one is needed. The CRL number is the time in milliseconds (or one
 * more than the last), so it keeps rising after a database restore.
 */
export class CrlPublisher {
  constructor(
    private readonly store: CrlPublisherStore,
    private readonly clock: () => Date,
    private readonly policy: CrlPolicy = DEFAULT_CRL_POLICY,
  ) {}

  /** Whether an issuer's CRL must be made again: none yet, a revocation since, or past half its validity. */
  async due(issuer: Issuer, store: Pick<CrlPublisherStore, 'crls'> = this.store): Promise<boolean> {
    const last = await store.crls.newest(issuer.id);
    if (!last) return true;
    if (issuer.role === 'root') return false;
    const halfLife = (last.nextUpdate.getTime() - last.thisUpdate.getTime()) / 2;
    if (last.thisUpdate.getTime() + halfLife <= this.clock().getTime()) return true;
    return store.crls.marked(issuer.id);
  }

  /**
   * Makes, signs and stores a new CRL for an issuer. The root's (a year) only
   * when asked, in a root ceremony; the intermediates' when due, unless forced.
   */
  async publish(issuer: Issuer, options: { force?: boolean } = {}): Promise<PublishedCrl | undefined> {
    return this.store.transaction(async (tx) => {
      await tx.lock(LOCKS.crl(issuer.id));
      const last = await tx.crls.newest(issuer.id);
      if (!options.force && !(await this.due(issuer, tx))) return undefined;
      await tx.crls.takeMarks(issuer.id);
      const now = this.clock();
      const thisUpdate = wholeSeconds(now);
      const nextUpdate = new Date(thisUpdate.getTime() + (issuer.role === 'root' ? ROOT_CRL_VALIDITY_MS : this.policy.validityMs));
      const byTime = BigInt(now.getTime());
      const number = last && last.number >= byTime ? last.number + 1n : byTime;

      const writer = new CrlEntryWriter();
      const expiredBefore = new Date(now.getTime() - this.policy.expiredGraceMs);
      // The next page is asked for before this one is written: the database works while this process encodes.
      let next = tx.crls.revokedPage(issuer.id, '', expiredBefore, PAGE);
      for (;;) {
        const page = await next;
        if (page.length === PAGE) next = tx.crls.revokedPage(issuer.id, page.at(-1)![0], expiredBefore, PAGE);
        for (const [serial, seconds, reason] of page) writer.add(serial, seconds, reason);
        if (page.length < PAGE) break;
      }
      const fields = {
        signatureAlgorithm: issuer.signatureAlgorithm,
        issuerName: issuer.subjectDer,
        authorityKeyIdentifier: issuer.authorityKeyIdentifier,
        thisUpdate,
        nextUpdate,
        number,
      };
      const der = await encodeSignedCrl(fields, writer.finish(), writer.length, (tbs) => issuer.signTbs(tbs));
      const record: CrlRecord = { issuerId: issuer.id, number, thisUpdate, nextUpdate, entries: writer.count, size: der.length, sha256: sha256Hex(der) };
      await tx.crls.insert(record, der);
      return { record, der };
    });
  }
}
