import { HierarchyError, certifyAuditKey, findRecordedKey, type Hierarchy } from '../../ca/hierarchy.ts';
import { caKeyLabel } from '../../ca/issuer.ts';
import { Signer } from '../../ca/signer.ts';
import type { KeyProvider } from '../../hsm/provider.ts';
import type { AuditKeyStore } from '../../store/subsets.ts';
import { LOCKS } from '../../store/locks.ts';
import type { AuditLog, Audited } from './audit-log.ts';

/** CKA_LABEL of the key that signs checkpoints (docs/auditors/audit-log.md). */
export const AUDIT_KEY_LABEL = caKeyLabel('audit', 1);

/**
 * The audit key recorded at init (its CKA_ID, public key and certificate by
 * the root), found in the token by CKA_ID. A missing key is fatal: a new key
 * would make every existing checkpoint unverifiable, and nothing would say
 * which key is the real one.
 */
export async function loadAuditKey(provider: KeyProvider, store: Pick<AuditKeyStore, 'caCertificates'>): Promise<{ signer: Signer; certificate: Buffer }> {
  const record = (await store.caCertificates.all()).find((r) => r.role === 'audit');
  if (!record) throw new HierarchyError(`the audit key is not recorded in the database: start "devid-ca serve" once with the root key online so it can certify "${AUDIT_KEY_LABEL}"`);
  const key = await findRecordedKey(provider, record);
  if (!key) {
    throw new HierarchyError(`the token holds no key with the recorded CKA_ID ${record.keyId.toString('hex')} of the audit key "${record.keyLabel}": every checkpoint was signed by it; restore the token from its backup`);
  }
  return { signer: new Signer(provider, key), certificate: record.der };
}

/**
 * `serve` on a database initialised before keys were recorded: certifies the
 * token's audit key (or a new one, while no checkpoint exists) under the
 * root and records it, once, under the ceremony lock so that nodes starting
 * together make one key. Refuses when checkpoints exist and the key is gone,
 * and when the root is offline.
 */
export async function ensureAuditKeyRecorded(provider: KeyProvider, crypto: Crypto, store: AuditKeyStore, audit: AuditLog, hierarchy: Hierarchy, baseUrl: string, now: Date): Promise<void> {
  const recorded = async (from: Pick<AuditKeyStore, 'caCertificates'>) => (await from.caCertificates.all()).some((r) => r.role === 'audit');
  if (await recorded(store)) return;
  await audit.record(store, async (tx): Promise<Audited<undefined>> => {
    await tx.lock(LOCKS.ceremony);
    if (await recorded(tx)) return { value: undefined, events: [] };
    const existing = await provider.findKey(AUDIT_KEY_LABEL);
    if (!existing && (await tx.checkpoints.latest())) {
      throw new HierarchyError(`the database holds signed checkpoints but the token holds no "${AUDIT_KEY_LABEL}" key: restore the token from its backup; a new key would make every checkpoint unverifiable`);
    }
    if (!hierarchy.root.online) throw new HierarchyError(`the audit key is not recorded yet: connect the root key (devid-root) for one start so that "${AUDIT_KEY_LABEL}" is certified`);
    const key = existing ?? (await provider.createKey(AUDIT_KEY_LABEL, 'P-256'));
    const organization = hierarchy.root.certificate.subjectName.getField('O')[0] ?? 'devid-ca';
    const stored = await tx.caCertificates.insert(await certifyAuditKey(hierarchy.root, key, crypto, { organization, baseUrl, now }));
    return { value: undefined, events: [{ action: 'ca.audit-key-recorded', actor: 'system', data: { keyLabel: key.label, keyId: key.id.toString('hex'), serial: stored.serial } }] };
  });
}
