import { createFirmwareSigner } from '../ca/firmware-signer.ts';
import { HierarchyError, createFirmwareIntermediate, loadHierarchy } from '../ca/hierarchy.ts';
import type { Issuer } from '../ca/issuer.ts';
import type { FirmwareSignerRecord } from '../store/firmware-signer-store.ts';
import { checkModelName } from '../registry/identifiers.ts';
import { ceremony, certificateSummary } from './ceremonies.ts';
import type { Context } from './context.ts';
import { loadIdentity } from './identity.ts';

async function identityOf(ctx: Context) {
  const identity = await loadIdentity(ctx.store);
  if (!identity) throw new HierarchyError('this database holds no initialised CA: run "devid-ca init" first');
  return identity;
}

/**
 * `devid-ca ca create firmware` (docs/operators/firmware.md): a root ceremony
 * that makes the firmware intermediate (`devid-firmware`) for an existing
 * installation. Serve publishes its certificate, CRL and OCSP once restarted.
 */
export async function createFirmwareCa(ctx: Context, actor: string): Promise<Issuer> {
  const identity = await identityOf(ctx);
  return ceremony(ctx, async (keys, tx) => {
    const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, tx, { allowOfflineRoot: true });
    const organization = hierarchy.root.certificate.subjectName.getField('O')[0] ?? identity.trustDomain;
    const firmware = await createFirmwareIntermediate(keys, ctx.crypto, tx, hierarchy, { organization, baseUrl: identity.httpBaseUrl, now: ctx.clock() });
    return { value: firmware, events: [{ action: 'ca.created', actor, data: { role: 'firmware', certificate: certificateSummary(firmware) } }] };
  });
}

/**
 * `devid-ca ca firmware-signer <model>` (docs/operators/firmware.md): the
 * model's signer key in the token and its codeSigning certificate from the
 * firmware intermediate. Needs the firmware intermediate's key, not the root's.
 */
export async function createModelFirmwareSigner(ctx: Context, model: unknown, actor: string): Promise<FirmwareSignerRecord> {
  const checked = checkModelName(model);
  const identity = await identityOf(ctx);
  return ceremony(ctx, async (keys, tx) => {
    const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, tx, { allowOfflineRoot: true });
    const organization = hierarchy.root.certificate.subjectName.getField('O')[0] ?? identity.trustDomain;
    const signer = await createFirmwareSigner(keys, tx, hierarchy, { model: checked, organization, baseUrl: identity.httpBaseUrl, now: ctx.clock() });
    return {
      value: signer,
      events: [{ action: 'firmware.signer-created', actor, data: { model: checked, certificate: signer.certificateSerial, keyLabel: signer.keyLabel, keyId: signer.keyId.toString('hex') } }],
    };
  });
}
