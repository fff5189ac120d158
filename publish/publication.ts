import type { Hierarchy } from '../ca/hierarchy.ts';
import type { Issuer } from '../ca/issuer.ts';
import { isHsmUnavailable } from '../hsm/errors.ts';
import type { KeyProvider } from '../hsm/provider.ts';
import type { AuditLog } from '../registry/audit/audit-log.ts';
import type { RevocationListener } from '../registry/lifecycle/revocation-service.ts';
import { WHOLE_CRL, type CrlRecord } from '../store/crl-store.ts';
import { ByteBoundedCache } from './byte-bounded-cache.ts';
import type { OcspResponseRecord } from '../store/ocsp-store.ts';
import type { PublicationStore } from '../store/subsets.ts';
import type { Logger } from '../platform/logger.ts';
import { IssuerDirectory } from './cert-ids.ts';
import { CrlPublisher, DEFAULT_CRL_POLICY, type CrlPolicy } from './crl-publisher.ts';
import { OcspResponder } from './ocsp-responder.ts';
import { OcspResponders, RESPONDER_CHECK_MS, ocspIssuers } from './ocsp-responders.ts';
import { OcspSigner, YIELD_EVERY } from './ocsp-signer.ts';

/** The background signer looks for stale and due OCSP responses, and for other processes' new ones, this often. */
const OCSP_TICK_MS = 1000;
/** CRLs are checked this often: a revocation reaches its CRL well within 60 s (docs/operators/revocation.md). */
const CRL_TICK_MS = 10_000;
/** Shard CRLs kept in memory at most (by their bytes); the others are read from the database when asked for. */
const SHARD_CACHE_BYTES = 64 * 1024 * 1024;
/** Responses signed per round of the background signer. */
const OCSP_ROUND = 500;
/**
 * Other processes' writes are read back this far, on the database's clock:
 * a revocation commits within this long of its write, or another process
 * may serve its old response until that response's nextUpdate.
 */
const SYNC_OVERLAP_MS = 30_000;
const SYNC_PAGE = 5000;

/** What making OCSP responders takes: the token, and the audit log that records each new responder key. */
export interface ResponderKeys {
  provider: KeyProvider;
  crypto: Crypto;
  audit: AuditLog;
}

/** A CRL as served: its bytes and what the HTTP headers say. */
export interface ServedCrl {
  record: CrlRecord;
  der: Buffer;
  etag: string;
}

/**
 * Publication of revocation status (docs/operators/revocation.md): pre-signs OCSP
 * responses at issuance and revocation and before nextUpdate, answers OCSP
 * from them, and keeps each CA's CRL current. When the HSM is away it goes
 * on answering from what is signed and says so in the log.
 */
export class Publication implements RevocationListener {
  readonly signer: OcspSigner;
  readonly responders: OcspResponders;
  readonly responder: OcspResponder;
  readonly crlPublisher: CrlPublisher;
  private readonly crls = new Map<number, ServedCrl>();
  /** The newest CRL of each shard (`<issuer id>/<shard>`), as last read; its bytes are read when asked for. */
  private readonly shardRecords = new Map<string, CrlRecord>();
  private readonly shardBytes = new ByteBoundedCache<ServedCrl>(SHARD_CACHE_BYTES, (crl) => crl.der.length);
  private readonly timers: NodeJS.Timeout[] = [];
  /** The database's clock at the last sync; undefined before the first. */
  private syncedTo?: Date;
  private signingDown = false;
  private ocspRunning = false;
  /** The CRL round in flight, and the one asked for while it runs. */
  private crlRunning: Promise<void> | undefined;
  private crlQueued: Promise<void> | undefined;

  constructor(
    private readonly store: PublicationStore,
    private readonly hierarchy: Hierarchy,
    keys: ResponderKeys,
    clock: () => Date,
    private readonly logger: Logger,
    crlPolicy: CrlPolicy = DEFAULT_CRL_POLICY,
    /** The public HTTP base URL the certificates' CDPs name: a sharded CRL names its own. */
    baseUrl?: string,
    /** OCSP responses kept in memory at most (DEVID_OCSP_CACHE_ENTRIES). */
    ocspCacheEntries?: number,
  ) {
    const issuing = ocspIssuers(hierarchy.issuers);
    const directory = new IssuerDirectory(issuing);
    this.responders = new OcspResponders(store, keys.provider, keys.crypto, keys.audit, issuing, clock, logger);
    this.signer = new OcspSigner(directory, this.responders, clock);
    this.responder = new OcspResponder(store, directory, this.signer, clock, logger, ocspCacheEntries);
    this.crlPublisher = new CrlPublisher(store, clock, crlPolicy, baseUrl);
  }

  /**
   * Starts the background work. The OCSP responders are loaded, or made
   * when missing (a hierarchy from before them), and the first CRL round
   * runs before this returns, so both are served from the start.
   */
  async start(): Promise<void> {
    await this.responders.maintain();
    this.syncedTo = await this.store.ocsp.clock();
    await this.crlRound();
    this.timers.push(
      setInterval(() => void this.ocspRound(), OCSP_TICK_MS),
      setInterval(() => { if (!this.crlRunning) void this.crlRound(); }, CRL_TICK_MS),
      setInterval(() => void this.responderRound(), RESPONDER_CHECK_MS),
    );
    for (const timer of this.timers) timer.unref();
  }

  stop(): void {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
  }

  /** For readiness: `ok`, or which CA's CRL is missing or past its nextUpdate. */
  crlFreshness(now = new Date()): string {
    const stale = this.hierarchy.issuers.filter((issuer) => {
      const crl = this.crls.get(issuer.id);
      // A retired CA whose key is not here cannot renew its CRL: the log says so at start; it does not take the node out.
      return (issuer.online || issuer.role === 'root') && (!crl || crl.record.nextUpdate <= now);
    });
    return stale.length === 0 ? 'ok' : `stale: ${stale.map((issuer) => issuer.slug).join(', ')} (missing or past nextUpdate)`;
  }

  /** The newest CRL of a CA, by slug. */
  crl(slug: string): ServedCrl | undefined {
    const issuer = this.hierarchy.bySlug(slug);
    return issuer ? this.crls.get(issuer.id) : undefined;
  }

  /** The newest CRL of one shard of a CA's CRL, by slug; read from the database when not among those cached. */
  async crlShard(slug: string, shard: number): Promise<ServedCrl | undefined> {
    const issuer = this.hierarchy.bySlug(slug);
    const key = `${issuer?.id}/${shard}`;
    const record = issuer ? this.shardRecords.get(key) : undefined;
    if (!issuer || !record) return undefined;
    const cached = this.shardBytes.get(key);
    if (cached?.record.number === record.number) return cached;
    const served = { record, der: await this.store.crls.bytes(issuer.id, record.number, shard), etag: `"${record.sha256}"` };
    this.shardBytes.set(key, served);
    return served;
  }

  /** After a revocation commits: new responses signed now, so OCSP says `revoked` at once. */
  async revoked(certificates: Parameters<RevocationListener['revoked']>[0]): Promise<void> {
    this.responder.forget(certificates);
    const signed: OcspResponseRecord[] = [];
    try {
      for (const certificate of certificates) {
        signed.push(await this.signer.presign(certificate));
        // C_Sign is synchronous: a chunk of a batch must not hold OCSP and enrollments up for its thousand signatures.
        if (signed.length % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await this.store.ocsp.putMany(signed);
    } catch (err) {
      // The revocation stands; the responder says tryLater for these until the background signer gets through.
      this.signingFailed(err, 'signing OCSP responses after a revocation');
      return;
    }
    this.responder.accept(signed);
  }

  /** One round: sign what is stale or due, then take what other processes signed. */
  async ocspRound(): Promise<void> {
    if (this.ocspRunning) return;
    this.ocspRunning = true;
    try {
      const signed = await this.signer.refreshDue(this.store, OCSP_ROUND);
      this.responder.accept(signed);
      this.signingWorks();
      await this.sync();
    } catch (err) {
      this.signingFailed(err, 'refreshing OCSP responses');
    } finally {
      this.ocspRunning = false;
    }
  }

  /** One round: load the responders other processes made, and make the next one of a CA whose responder nears its end. */
  async responderRound(): Promise<void> {
    try {
      await this.responders.maintain();
    } catch (err) {
      this.signingFailed(err, 'renewing the OCSP responders');
    }
  }

  /** Takes what other processes wrote since the last sync (and the overlap before it), a page at a time. */
  private async sync(): Promise<void> {
    // The first page's statement reads the database's clock too: the next sync starts there.
    let until: Date | undefined;
    const from = this.syncedTo ?? (await this.store.ocsp.clock());
    let after = { at: new Date(from.getTime() - SYNC_OVERLAP_MS).toISOString(), serial: '' };
    for (;;) {
      const { rows, next, clock } = await this.store.ocsp.changedSince(after, SYNC_PAGE);
      until ??= clock;
      this.responder.accept(rows);
      if (rows.length < SYNC_PAGE || !next) break;
      after = next;
    }
    this.syncedTo = until;
  }

  /**
   * One round: make the CRLs that are due (root excepted), then serve the
   * newest of each CA. Asked for while a round runs (`devid-ca crl publish`
   * after its CRLs are written), it waits for that one and runs again: the
   * round in flight may have read the CRLs before they were, and returning
   * at once would leave the old ones served until the next tick.
   */
  crlRound(): Promise<void> {
    if (!this.crlRunning) {
      this.crlRunning = this.crlRoundNow().finally(() => { this.crlRunning = undefined; });
      return this.crlRunning;
    }
    this.crlQueued ??= this.crlRunning.then(() => {
      this.crlQueued = undefined;
      return this.crlRound();
    });
    return this.crlQueued;
  }

  private async crlRoundNow(): Promise<void> {
    try {
      for (const issuer of this.hierarchy.issuers) {
        await this.publishIfDue(issuer);
        await this.load(issuer);
      }
    } catch (err) {
      this.logger.error({ err }, 'loading CRLs failed');
    }
  }

  private async publishIfDue(issuer: Issuer): Promise<void> {
    if (issuer.role === 'root' || !issuer.online) return;
    try {
      for (const { record } of await this.crlPublisher.publishDue(issuer)) {
        this.logger.info({ ca: issuer.slug, ...(record.shard === WHOLE_CRL ? {} : { shard: record.shard }), number: record.number.toString(), entries: record.entries }, 'CRL published');
      }
      this.signingWorks();
    } catch (err) {
      this.signingFailed(err, `publishing the ${issuer.slug} CRL`);
    }
  }

  /** The whole CRL is kept in memory; of the shards, which CRL is newest (their bytes are read on demand). */
  private async load(issuer: Issuer): Promise<void> {
    const { newest } = await this.store.crls.overview(issuer.id);
    for (const [shard, record] of newest) {
      if (shard !== WHOLE_CRL) {
        this.shardRecords.set(`${issuer.id}/${shard}`, record);
        continue;
      }
      if (this.crls.get(issuer.id)?.record.number === record.number) continue;
      const der = await this.store.crls.bytes(issuer.id, record.number);
      this.crls.set(issuer.id, { record, der, etag: `"${record.sha256}"` });
    }
  }

  private signingFailed(err: unknown, what: string): void {
    if (!isHsmUnavailable(err)) {
      this.logger.error({ err }, `${what} failed`);
      return;
    }
    if (!this.signingDown) this.logger.error({ err }, `signing is down (the HSM does not answer): OCSP answers from pre-signed responses, CRLs and new responses wait (${what})`);
    this.signingDown = true;
  }

  private signingWorks(): void {
    if (this.signingDown) this.logger.info('signing is back: OCSP responses and CRLs are being brought up to date');
    this.signingDown = false;
  }
}
