import { Hierarchy, HierarchyError, KeyCeremony, createFirmwareIntermediate, createHierarchy, existingHierarchy, loadHierarchy, rolloverOperational } from '../ca/hierarchy.ts';
import { IssuanceService } from '../ca/issuance.ts';
import { CrlPublisher } from '../publish/crl-publisher.ts';
import { OcspResponders, ocspIssuers } from '../publish/ocsp-responders.ts';
import type { Issuer } from '../ca/issuer.ts';
import { AuditCheckpoints } from '../registry/audit/audit-checkpoints.ts';
import { loadAuditKey } from '../registry/audit/audit-key.ts';
import type { Audited } from '../registry/audit/audit-log.ts';
import { LOCKS } from '../store/locks.ts';
import type { Store } from '../store/store.ts';
import { loopbackWarnings, type PublicIdentity } from './config.ts';
import type { Context } from './context.ts';
import { loadIdentity, recordIdentity } from './identity.ts';
import { ensureServerCredentials } from './tls.ts';

/**
 * Key ceremonies: init and the operational rollover. Each runs under the
 * ceremony lock in one audited transaction; the keys it made are destroyed
 * again (by CKA_ID, and only those the database does not record) when that
 * transaction does not commit, so a failed ceremony can simply be rerun.
 */
export async function ceremony<T>(ctx: Context, work: (keys: KeyCeremony, tx: Store) => Promise<Audited<T>>): Promise<T> {
  const keys = new KeyCeremony(ctx.provider);
  try {
    return await ctx.audit.record(ctx.store, async (tx) => {
      await tx.lock(LOCKS.ceremony);
      return work(keys, tx);
    });
  } catch (err) {
    if (keys.created.length > 0) {
      await keys.undo(ctx.store).catch((undoErr: unknown) => {
        ctx.logger.error({ err: undoErr, keys: keys.created.map((k) => ({ label: k.label, id: k.id.toString('hex') })) }, 'could not check which keys of the failed ceremony to remove: remove them by CKA_ID if the database does not record them');
      });
    }
    throw err;
  }
}

export function certificateSummary(issuer: Issuer): Record<string, unknown> {
  return { id: issuer.id, slug: issuer.slug, serial: issuer.record.serial, keyLabel: issuer.record.keyLabel, keyId: issuer.record.keyId.toString('hex') };
}

export interface InitOptions {
  /** `init --firmware`: make the firmware intermediate too, while the root key is in the token anyway. */
  firmware?: boolean;
}

export interface InitResult {
  hierarchy: Hierarchy;
  identity: PublicIdentity;
}

/**
 * `devid-ca init` (docs/operators/configuration.md): token, CA keys, hierarchy, schema and
 * server certificate. Refuses when a hierarchy exists in the database or the token.
 */
export async function initialise(ctx: Context, progress: (line: string) => void = () => {}, options: InitOptions = {}): Promise<InitResult> {
  return (await initialiseUnlessPresent(ctx, progress, false, options))!;
}

/** `serve --init-if-empty`: initialises, or returns undefined when a hierarchy exists (this node joins it). */
export async function initialiseIfEmpty(ctx: Context, progress: (line: string) => void = () => {}): Promise<InitResult | undefined> {
  return initialiseUnlessPresent(ctx, progress, true);
}

async function initialiseUnlessPresent(ctx: Context, progress: (line: string) => void, joinExisting: boolean, options: InitOptions = {}): Promise<InitResult | undefined> {
  const { publicHost, trustDomain, httpBaseUrl } = ctx.config;
  const identity = { publicHost, trustDomain, httpBaseUrl };
  const now = ctx.clock();
  const hierarchy = await ceremony(ctx, async (keys, tx): Promise<Audited<Hierarchy | undefined>> => {
    // Nodes starting together on one PostgreSQL: the first creates, the others wait and then join.
    const reason = await existingHierarchy(ctx.provider, tx);
    if (reason && joinExisting) return { value: undefined, events: [] };
    if (reason) throw new HierarchyError(`refusing to overwrite the existing hierarchy: ${reason}`);
    for (const warning of loopbackWarnings(identity)) ctx.logger.warn(warning);
    progress('creating the CA keys and the audit key in the token, and certifying them');
    await recordIdentity(tx, identity);
    const created = await createHierarchy(keys, ctx.crypto, tx, { organization: trustDomain, baseUrl: httpBaseUrl, now });
    let made = created.hierarchy;
    if (options.firmware) {
      progress('creating the firmware intermediate (devid-firmware) under the root');
      const firmware = await createFirmwareIntermediate(keys, ctx.crypto, tx, made, { organization: trustDomain, baseUrl: httpBaseUrl, now });
      made = new Hierarchy([...made.issuers, firmware]);
    }
    const certificates = Object.fromEntries(made.issuers.map((i) => [i.role, certificateSummary(i)]));
    certificates.audit = { id: created.audit.id, serial: created.audit.serial, keyLabel: created.audit.keyLabel, keyId: created.audit.keyId.toString('hex') };
    return { value: made, events: [{ action: 'ca.initialised', actor: 'cli', data: { ...identity, certificates } }] };
  });
  if (!hierarchy) return undefined;
  progress('issuing the HTTPS server certificate');
  await ensureServerCredentials(ctx, new IssuanceService(ctx.clock), hierarchy, identity);
  progress('signing the root CRL (valid a year; "devid-ca crl publish --root" signs the next one)');
  await new CrlPublisher(ctx.store, ctx.clock, ctx.config.crl).publish(hierarchy.root, { force: true });
  progress('making the OCSP responders (a key in the token and a 30-day certificate for each intermediate)');
  await new OcspResponders(ctx.store, ctx.provider, ctx.crypto, ctx.audit, ocspIssuers(hierarchy.issuers), ctx.clock, ctx.logger).maintain();
  progress('signing the first audit checkpoint');
  const auditKey = await loadAuditKey(ctx.provider, ctx.store);
  await new AuditCheckpoints(auditKey.signer, auditKey.certificate, ctx.clock).create(ctx.store);
  return { hierarchy, identity };
}

/**
 * `devid-ca ca rollover operational` (docs/reference/certificates.md): a root ceremony. A new
 * key (`devid-operational-<n>`) and a new operational intermediate that signs
 * every new certificate; the old one keeps its row and keeps signing its CRL
 * and OCSP until its last certificate expires.
 */
export async function rolloverOperationalCa(ctx: Context, actor: string): Promise<{ previous: Issuer; next: Issuer }> {
  const identity = await loadIdentity(ctx.store);
  if (!identity) throw new HierarchyError('this database holds no initialised CA: run "devid-ca init" first');
  return ceremony(ctx, async (keys, tx) => {
    const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, tx, { allowOfflineRoot: true });
    const organization = hierarchy.root.certificate.subjectName.getField('O')[0] ?? identity.trustDomain;
    const result = await rolloverOperational(keys, ctx.crypto, tx, hierarchy, { organization, baseUrl: identity.httpBaseUrl, now: ctx.clock() });
    return {
      value: result,
      events: [{ action: 'ca.rolled-over', actor, data: { role: 'operational', previous: certificateSummary(result.previous), next: certificateSummary(result.next) } }],
    };
  });
}
