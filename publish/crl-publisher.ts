import { wholeSeconds } from '../ca/der.ts';
import { sha256Hex } from '../ca/digest.ts';
import type { Issuer } from '../ca/issuer.ts';
import { WHOLE_CRL, type CrlRecord, type CrlStore } from '../store/crl-store.ts';
import { crlShardUrl, crlUrl } from '../ca/urls.ts';
import { LOCKS } from '../store/locks.ts';
import type { CrlPublisherStore } from '../store/subsets.ts';
import { CrlEntryWriter, encodeSignedCrl } from './crl-der.ts';

export interface CrlPolicy {
  /** thisUpdate to nextUpdate of the intermediates' CRLs (DEVID_CRL_NEXT_UPDATE, 24 h). */
  validityMs: number;
  /** How long an expired certificate stays listed (DEVID_CRL_EXPIRED_GRACE, 7 days). */
  expiredGraceMs: number;
  /** Shards of each intermediate's CRL for new certificates, by role (DEVID_CRL_SHARDS); absent or 0: one whole CRL. */
  shards: Partial<Record<'factory' | 'operational', number>>;
}

export const DEFAULT_CRL_POLICY: CrlPolicy = { validityMs: 24 * 3600 * 1000, expiredGraceMs: 7 * 24 * 3600 * 1000, shards: {} };

/** The shards new certificates of an issuer go to under a policy (0: none). */
export function configuredShards(policy: CrlPolicy, issuer: Pick<Issuer, 'role'>): number {
  return issuer.role === 'factory' || issuer.role === 'operational' ? policy.shards[issuer.role] ?? 0 : 0;
}
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
    /** The public HTTP base URL certificates' CDPs name (recorded at init): needed once an issuer's CRL has shards. */
    private readonly baseUrl?: string,
  ) {}

  /** Whether a CRL of an issuer (its whole CRL, or a shard's) must be made again: none yet, a revocation since, or past half its validity. */
  async due(issuer: Issuer, shard = WHOLE_CRL, store: { crls: Pick<CrlStore, 'newest' | 'marked'> } = this.store): Promise<boolean> {
    const last = await store.crls.newest(issuer.id, shard);
    if (!last || !this.current(issuer, last)) return true;
    return store.crls.marked(issuer.id, shard);
  }

  /** Makes every CRL of an issuer (its whole CRL, then each shard's) that is due, whatever the shard count in a few reads; those it made. */
  async publishDue(issuer: Issuer): Promise<PublishedCrl[]> {
    const shards = await this.shards(issuer);
    const { newest, marked } = await this.store.crls.overview(issuer.id);
    const made: PublishedCrl[] = [];
    for (let shard = WHOLE_CRL; shard < shards; shard += 1) {
      const last = newest.get(shard);
      if (last && this.current(issuer, last) && !marked.has(shard)) continue;
      const published = await this.make(issuer, shard, shards, false);
      if (published) made.push(published);
    }
    return made;
  }

  /** A CRL not yet past half its validity (the root's is made only in a ceremony). */
  private current(issuer: Issuer, last: CrlRecord): boolean {
    if (issuer.role === 'root') return true;
    const halfLife = (last.nextUpdate.getTime() - last.thisUpdate.getTime()) / 2;
    return last.thisUpdate.getTime() + halfLife > this.clock().getTime();
  }

  /** Every CRL of an issuer (its whole CRL, then each shard's) that is due, or all of them when forced; those it made. */
  async publishAll(issuer: Issuer, options: { force?: boolean } = {}): Promise<PublishedCrl[]> {
    const made: PublishedCrl[] = [];
    for (let shard = WHOLE_CRL, shards = await this.shards(issuer); shard < shards; shard += 1) {
      const published = await this.make(issuer, shard, shards, options.force === true);
      if (published) made.push(published);
    }
    return made;
  }

  /** The shards an issuer's CRL has: those configured for new certificates, and every one a certificate was issued into. */
  async shards(issuer: Issuer): Promise<number> {
    return Math.max(configuredShards(this.policy, issuer), await this.store.crls.shardsUsed(issuer.id));
  }

  /**
   * Makes, signs and stores a new CRL for an issuer (its whole CRL, or one
   * shard's). The root's (a year) only when asked, in a root ceremony; the
   * intermediates' when due, unless forced. A shard's CRL, and the whole
   * CRL of an issuer with shards, carry an issuingDistributionPoint naming
   * their URL: each is complete for the certificates whose CDP names it.
   */
  async publish(issuer: Issuer, options: { force?: boolean; shard?: number } = {}): Promise<PublishedCrl | undefined> {
    return this.make(issuer, options.shard ?? WHOLE_CRL, await this.shards(issuer), options.force === true);
  }

  /** One CRL of an issuer that has `shards` shards, when due or forced. */
  private async make(issuer: Issuer, shard: number, shards: number, force: boolean): Promise<PublishedCrl | undefined> {
    const scoped = shard !== WHOLE_CRL || shards > 0;
    const baseUrl = this.baseUrl;
    if (scoped && baseUrl === undefined) throw new Error('a sharded CRL names its URL: the base URL is needed');
    return this.store.transaction(async (tx) => {
      await tx.lock(LOCKS.crl(issuer.id));
      const last = await tx.crls.newest(issuer.id, shard);
      if (!force && !(await this.due(issuer, shard, tx))) return undefined;
      await tx.crls.takeMarks(issuer.id, shard);
      const now = this.clock();
      const thisUpdate = wholeSeconds(now);
      const nextUpdate = new Date(thisUpdate.getTime() + (issuer.role === 'root' ? ROOT_CRL_VALIDITY_MS : this.policy.validityMs));
      const byTime = BigInt(now.getTime());
      const number = last && last.number >= byTime ? last.number + 1n : byTime;

      const writer = new CrlEntryWriter();
      const expiredBefore = new Date(now.getTime() - this.policy.expiredGraceMs);
      // The next page is asked for before this one is written: the database works while this process encodes.
      let next = tx.crls.revokedPage(issuer.id, shard, '', expiredBefore, PAGE);
      for (;;) {
        const page = await next;
        if (page.length === PAGE) next = tx.crls.revokedPage(issuer.id, shard, page.at(-1)![0], expiredBefore, PAGE);
        for (const [serial, seconds, reason] of page) writer.add(serial, seconds, reason);
        if (page.length < PAGE) break;
      }
      const url = shard === WHOLE_CRL ? crlUrl(baseUrl ?? '', issuer.slug) : crlShardUrl(baseUrl ?? '', issuer.slug, shard);
      const fields = {
        signatureAlgorithm: issuer.signatureAlgorithm,
        issuerName: issuer.subjectDer,
        authorityKeyIdentifier: issuer.authorityKeyIdentifier,
        thisUpdate,
        nextUpdate,
        number,
        ...(scoped ? { distributionPoint: url } : {}),
      };
      const der = await encodeSignedCrl(fields, writer.finish(), writer.length, (tbs) => issuer.signTbs(tbs));
      const record: CrlRecord = { issuerId: issuer.id, shard, number, thisUpdate, nextUpdate, entries: writer.count, size: der.length, sha256: sha256Hex(der) };
      await tx.crls.insert(record, der);
      return { record, der };
    });
  }
}
