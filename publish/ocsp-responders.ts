import { createPublicKey } from 'node:crypto';
import { KeyCeremony } from '../ca/hierarchy.ts';
import type { Issuer } from '../ca/issuer.ts';
import { createResponder } from '../ca/ocsp-responder.ts';
import { DAY_MS, subjectPublicKeyBits } from '../ca/profiles.ts';
import { keyIdentifier, Signer } from '../ca/signer.ts';
import type { KeyProvider } from '../hsm/provider.ts';
import type { AuditLog } from '../registry/audit/audit-log.ts';
import { LOCKS } from '../store/locks.ts';
import type { OcspResponderRecord } from '../store/ocsp-responder-store.ts';
import type { OcspResponderKeysStore } from '../store/subsets.ts';
import type { Logger } from '../platform/logger.ts';
import { OCSP_VALIDITY_MS } from './ocsp-validity.ts';

/** A new responder is made when the current one has less than this left: always more than a response's 4 days. */
export const RESPONDER_ROTATE_BEFORE_MS = 10 * DAY_MS;
/** How often each process checks its responders and loads those another process made. */
export const RESPONDER_CHECK_MS = 60_000;
/**
 * Responses signed before a new responder took over, or in the time every
 * process needs to load it, are signed again by it once this has passed.
 */
export const RESPONDER_TAKEOVER_MS = 3 * RESPONDER_CHECK_MS;

/** The CAs that answer OCSP: every intermediate. The root never signs online: what it signs is on its CRL. */
export function ocspIssuers(issuers: readonly Issuer[]): Issuer[] {
  return issuers.filter((issuer) => issuer.role !== 'root');
}

/** A responder this process signs with. */
export interface ResponderKey {
  record: OcspResponderRecord;
  /** ResponderID byKey (RFC 6960 4.2.1): SHA-1 of the responder's public key, its SKI. */
  keyHash: Buffer;
  signer: Signer;
}

/**
 * The delegated OCSP responders (RFC 6960 4.2.2.2) of the online issuing
 * CAs: the intermediates certify keyCertSign and cRLSign only, so each
 * answers through a responder key of its own, made in the token and
 * certified by it for 30 days. The root has none: it never signs online.
 * Every process loads the newest responder of each CA; whichever process
 * first sees one near its end makes the next under an advisory lock.
 */
export class OcspResponders {
  private readonly byIssuer = new Map<number, ResponderKey>();
  /** Responders whose key is missing here, said once each. */
  private readonly missing = new Set<number>();

  constructor(
    private readonly store: OcspResponderKeysStore,
    private readonly provider: KeyProvider,
    private readonly crypto: Crypto,
    private readonly audit: AuditLog,
    /** The CAs that answer OCSP (ocspIssuers). */
    private readonly issuers: readonly Issuer[],
    private readonly clock: () => Date,
    private readonly logger: Logger,
  ) {}

  /** The responder that signs for a CA now; undefined when none can (its key is not here, or it ends too soon). */
  get(issuerId: number): ResponderKey | undefined {
    const responder = this.byIssuer.get(issuerId);
    return responder && responder.record.notAfter.getTime() - this.clock().getTime() > OCSP_VALIDITY_MS ? responder : undefined;
  }

  /**
   * Per CA with a responder here: responses produced before this are signed
   * again. Normally `refreshBefore`; once a new responder has taken over,
   * everything from before its takeover, so no response of an older one stays.
   */
  refreshBefore(refreshBefore: Date): Map<number, Date> {
    const now = this.clock().getTime();
    const bounds = new Map<number, Date>();
    for (const issuer of this.issuers) {
      const responder = this.get(issuer.id);
      if (!responder) continue;
      const takenOver = responder.record.createdAt.getTime() + RESPONDER_TAKEOVER_MS;
      bounds.set(issuer.id, takenOver <= now && takenOver > refreshBefore.getTime() ? new Date(takenOver) : refreshBefore);
    }
    return bounds;
  }

  /** Loads the newest responders, makes the ones that are missing or near their end, and loads again if it made any. */
  async maintain(): Promise<void> {
    await this.load();
    let rotated = false;
    for (const issuer of this.issuers) {
      if (!(await this.due(issuer))) continue;
      // Made here or, when another process got the lock first, by that one: either way there is a newer responder to load.
      await this.rotate(issuer);
      rotated = true;
    }
    if (rotated) await this.load();
  }

  private async due(issuer: Issuer): Promise<boolean> {
    if (!issuer.online) return false;
    const current = this.byIssuer.get(issuer.id)?.record;
    const now = this.clock();
    if (current && current.notAfter.getTime() - now.getTime() > RESPONDER_ROTATE_BEFORE_MS) return false;
    // A CA's certificate ends before the responder's would: a new one would not last longer.
    if (current && current.notAfter >= issuer.notAfter) return false;
    // A retired CA answers until its last certificate expires, and no longer.
    return issuer.record.active || (await this.store.ocsp.hasLive(issuer.id, now));
  }

  /** Makes a CA's next responder, unless another process just did. */
  private async rotate(issuer: Issuer): Promise<void> {
    const keys = new KeyCeremony(this.provider);
    try {
      await this.audit.record(this.store, async (tx) => {
        await tx.lock(LOCKS.ocspResponder(issuer.id));
        const now = this.clock();
        const newest = await tx.ocspResponders.newest(issuer.id);
        if (newest && newest.notAfter.getTime() - now.getTime() > RESPONDER_ROTATE_BEFORE_MS) return { value: undefined, events: [] };
        const record = await tx.ocspResponders.insert(await createResponder(keys, this.crypto, issuer, (newest?.number ?? 0) + 1, now));
        this.logger.info({ ca: issuer.slug, keyLabel: record.keyLabel, serial: record.serial, notAfter: record.notAfter.toISOString() }, 'new OCSP responder');
        return {
          value: undefined,
          events: [{
            action: 'ocsp.responder-created', actor: 'system',
            data: { ca: issuer.slug, number: record.number, serial: record.serial, keyLabel: record.keyLabel, keyId: record.keyId.toString('hex'), notAfter: record.notAfter.toISOString() },
          }],
        };
      });
    } catch (err) {
      if (keys.created.length > 0) {
        await keys.undo(this.store).catch((undoErr: unknown) => {
          this.logger.error({ err: undoErr, keys: keys.created.map((k) => ({ label: k.label, id: k.id.toString('hex') })) }, 'could not check which responder keys to remove: remove them by CKA_ID if the database does not record them');
        });
      }
      throw err;
    }
  }

  /** The newest responder of each CA from the database, with its key found by CKA_ID and checked against its certificate. */
  private async load(): Promise<void> {
    const ours = new Set(this.issuers.map((issuer) => issuer.id));
    for (const record of await this.store.ocspResponders.current()) {
      if (!ours.has(record.issuerId) || this.byIssuer.get(record.issuerId)?.record.id === record.id) continue;
      const key = await this.provider.findKeyById(record.keyId);
      const recorded = createPublicKey({ key: record.publicKey, format: 'der', type: 'spki' });
      if (!key || !recorded.equals(key.publicKey)) {
        if (this.missing.has(record.id)) continue;
        this.missing.add(record.id);
        this.logger.error({ keyLabel: record.keyLabel, keyId: record.keyId.toString('hex') }, 'the token holds no key matching the newest OCSP responder: its CA answers tryLater until a new responder is made');
        continue;
      }
      this.byIssuer.set(record.issuerId, { record, keyHash: keyIdentifier(subjectPublicKeyBits(record.publicKey)), signer: new Signer(this.provider, key) });
    }
  }
}
