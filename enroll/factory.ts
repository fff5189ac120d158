import { sha256Hex } from '../ca/digest.ts';
import type { Hierarchy } from '../ca/hierarchy.ts';
import type { IssuanceService } from '../ca/issuance.ts';
import { certificatePem } from '../ca/pem.ts';
import { birthProfile } from '../ca/profiles.ts';
import { isDeclaredWithoutKey } from '../registry/catalogue/constrained-devices.ts';
import { conflict, forbidden, malformed } from '../errors/domain-error.ts';
import type { AuditEntry, AuditLog, Audited } from '../registry/audit/audit-log.ts';
import { cloneSignalEvents } from '../registry/reports/clone-signals.ts';
import { checkModelName, checkBatch, checkSerial } from '../registry/identifiers.ts';
import { LOCKS } from '../store/locks.ts';
import type { FactoryServiceStore, FactoryStore, LockingAll } from '../store/subsets.ts';
import { StoreConflictError, type CertificateRecord, type DeviceRecord } from '../store/types.ts';
import { verifyCsr } from '../pki/csr.ts';
import { checkActivationProof, createTpmChallenge, verifyActivation, type TpmActivationProof, type TpmChallenge, type TpmChallengeFields } from './tpm-activation.ts';

/** The factory line a token speaks for (docs/operators/tokens-and-roles.md). */
export interface FactoryPrincipal {
  tokenId: string;
  line: string;
  /** null: every model. */
  models: string[] | null;
}

/** The fields of a request as the HTTP layer found them; their values are checked here. */
export interface BirthCertificateFields {
  serial?: unknown;
  model?: unknown;
  batch?: unknown;
  csr?: unknown;
  tpmActivation?: unknown;
}

interface BirthCertificateRequest {
  serial: string;
  model: string;
  batch: string;
  csr: string;
  /** The AK's proof of living in a certified TPM (enroll/tpm-activation.ts), when the line made a TPM challenge. */
  tpmActivation?: TpmActivationProof;
}

export interface BirthCertificateResult {
  /** 201 issued now, 200 the existing certificate of a safe retry. */
  status: 200 | 201;
  certificate: string;
  chain: string;
  certificateSerial: string;
  device: { serial: string; model: string; batch: string; line: string; state: string };
}

export interface FactoryDeps {
  store: FactoryServiceStore;
  audit: AuditLog;
  issuance: IssuanceService;
  hierarchy: Hierarchy;
  baseUrl: string;
  clock: () => Date;
}

/** A key certified for another device: refused and audited outside the refused transaction. */
class CloneSuspected extends Error {
  constructor(readonly boundTo: string[]) {
    super('clone suspected');
  }
}

function checkRequest(fields: BirthCertificateFields): BirthCertificateRequest {
  const checked = { serial: checkSerial(fields.serial), model: checkModelName(fields.model), batch: checkBatch(fields.batch) };
  if (typeof fields.csr !== 'string' || fields.csr.length === 0) throw malformed('csr must be a PEM or base64url DER PKCS#10 request');
  const tpmActivation = checkActivationProof(fields.tpmActivation);
  return { ...checked, csr: fields.csr, ...(tpmActivation ? { tpmActivation } : {}) };
}

/**
 * Birth certificates for factory lines (docs/operators/factory.md). Safe to retry: the
 * same serial with the same key returns the existing certificate. The device
 * record, the certificate and the audit event commit together or not at all.
 */
export class FactoryService {
  constructor(private readonly deps: FactoryDeps) {}

  /** A TPM credential-activation challenge for a device's attestation key (enroll/tpm-activation.ts). */
  async tpmChallenge(principal: FactoryPrincipal, fields: TpmChallengeFields): Promise<TpmChallenge> {
    return createTpmChallenge(this.deps.store, principal, fields, this.deps.clock());
  }

  async requestBirthCertificate(principal: FactoryPrincipal, fields: BirthCertificateFields): Promise<BirthCertificateResult> {
    const request = checkRequest(fields);
    if (principal.models && !principal.models.includes(request.model)) {
      throw forbidden(`this factory token may not request certificates for model ${request.model}`);
    }
    const { publicKey } = verifyCsr(request.csr);
    const keySha256 = sha256Hex(publicKey.spki);
    const actor = `token:${principal.tokenId}`;
    const { store, audit } = this.deps;
    try {
      return await audit.record(store, (tx) => this.issueOrReturn(tx, principal, request, publicKey.spki, publicKey.keyType, keySha256, actor));
    } catch (err) {
      const boundTo = err instanceof CloneSuspected ? err.boundTo
        : err instanceof StoreConflictError ? await store.certificates.devicesWithKey(keySha256) : undefined;
      if (!boundTo) throw err;
      await audit.recordAlone(store, ...cloneSignals(request, keySha256, boundTo, actor));
      throw conflict('this public key is already bound to another device; the attempt was recorded as a suspected clone');
    }
  }

  private async issueOrReturn(
    tx: FactoryStore & LockingAll, principal: FactoryPrincipal, request: BirthCertificateRequest,
    spki: Buffer, keyType: string, keySha256: string, actor: string,
  ): Promise<Audited<BirthCertificateResult>> {
    // The device's lock, and the batch's shared with other births of the batch but exclusive with its declaration as
    // compromised: a birth either commits before it (and the revocation finds the device) or sees it. Then everything
    // the decision needs in one read.
    await tx.lockAll([LOCKS.device(request.serial)], [LOCKS.batch(request.batch)]);
    const { model, holders, device: existing, compromised } = await tx.devices.forBirth(request.serial, request.model, keySha256, request.batch);
    if (!model) throw malformed(`unknown model ${request.model}: an operator declares it with PUT /operator/v1/models/${request.model}`);

    // The key's holders first: another device's key is a clone signal, whatever this serial's state.
    const boundTo = holders.filter((serial) => serial !== request.serial);
    if (boundTo.length > 0) throw new CloneSuspected(boundTo);

    // A device an operator declared for its gateways, without a factory key, may get its first birth certificate (docs/operators/gateways.md).
    const declared = existing !== undefined && isDeclaredWithoutKey(existing);
    if (existing && !existing.reprovisionAllowed && !declared) {
      const value = await this.retry(tx, existing, principal, request, keySha256);
      return { value, events: [{ action: 'device.birth-certificate-returned', actor, device: request.serial, data: { certificateSerial: value.certificateSerial } }] };
    }
    if (existing && holders.includes(request.serial)) {
      throw conflict(`device ${request.serial} is being reprovisioned: its new birth certificate needs a key it has never had certified`);
    }
    if (compromised) throw conflict(`batch ${request.batch} was revoked as compromised: it takes no new birth certificates`);
    const { hierarchy, baseUrl, clock, issuance } = this.deps;
    const now = clock();
    // Proven before anything is written: the key lives in the TPM the line's challenge was made for.
    const tpm = request.tpmActivation ? await verifyActivation(tx, principal, request, request.tpmActivation, spki, now) : undefined;
    const issuer = hierarchy.factory;
    const profile = birthProfile({ issuer, spki, baseUrl, now }, {
      serial: request.serial, manufacturer: model.manufacturer, model: model.name, hwType: model.hwType,
    });
    const binding = { model: model.name, batch: request.batch, line: principal.line, factoryKeySha256: keySha256 };
    // A reprovisioned device keeps its record (class, owner, history) and gets its new binding.
    let device: DeviceRecord | undefined;
    if (declared) {
      device = await tx.devices.bindDeclared(request.serial, binding, now);
      if (!device) throw conflict(`device ${request.serial} got its birth certificate meanwhile`);
    } else if (existing) {
      device = await tx.devices.rebind(request.serial, binding, now);
      if (!device) throw conflict(`device ${request.serial} is no longer being reprovisioned`);
    } else {
      device = { serial: request.serial, manufacturer: 'self', deviceClass: null, owner: null, state: 'manufactured', reprovisionAllowed: false, signCount: 0, factoryAttestedAt: null, createdAt: now, updatedAt: now, ...binding };
      await tx.devices.insert(device);
    }
    const { pem, record } = await issuance.issue(tx, { issuer, profile, deviceSerial: request.serial, predecessorSha256: null });
    if (tpm && !(await tx.tpmActivations.redeem(tpm.id, record.serial, now))) throw conflict(`TPM challenge ${tpm.id} was redeemed already`);
    return {
      value: this.result(201, pem, record, device),
      events: [{
        action: existing && !declared ? 'device.reprovisioned' : 'device.manufactured',
        actor,
        device: request.serial,
        data: {
          model: model.name, batch: request.batch, line: principal.line, hwType: model.hwType, keyType, keySha256,
          certificateSerial: record.serial, certificateSha256: record.sha256, ...(declared ? { declared: true } : {}),
          ...(tpm ? { tpm: { challenge: tpm.id, manufacturer: tpm.manufacturer, ekCertificateSha256: tpm.ekSha256, akName: tpm.akName.toString('hex') } } : {}),
        },
      }],
    };
  }

  /**
   * The same serial again: the same key, model, batch and line is a retry
   * (200). Anything else is a conflict that says only that the serial is
   * taken: another line must not learn this device's model, batch or line.
   */
  private async retry(tx: FactoryStore, device: DeviceRecord, principal: FactoryPrincipal, request: BirthCertificateRequest, keySha256: string): Promise<BirthCertificateResult> {
    const same = device.factoryKeySha256 === keySha256 && device.model === request.model && device.batch === request.batch && device.line === principal.line;
    if (!same) throw conflict(`serial ${device.serial} already has a birth certificate`);
    const birth = (await tx.certificates.byDevice(device.serial, 'birth')).filter((c) => c.keySha256 === keySha256 && !c.revokedAt).at(-1);
    if (!birth) throw conflict(`serial ${device.serial} already has a birth certificate`);
    return this.result(200, certificatePem(birth.der), birth, device);
  }

  private result(status: 200 | 201, certificate: string, record: CertificateRecord, device: DeviceRecord): BirthCertificateResult {
    const issuer = this.deps.hierarchy.byId(record.issuerId) ?? this.deps.hierarchy.factory;
    return {
      status,
      certificate,
      chain: this.deps.hierarchy.chainPem(issuer),
      certificateSerial: record.serial,
      device: { serial: device.serial, model: device.model, batch: device.batch, line: device.line, state: device.state },
    };
  }
}

function cloneSignals(request: BirthCertificateRequest, keySha256: string, boundTo: string[], actor: string): AuditEntry[] {
  return cloneSignalEvents(boundTo.length > 0 ? boundTo : [request.serial], actor, {
    reason: 'factory key presented for another serial', requestedSerial: request.serial, model: request.model, batch: request.batch, keySha256,
  });
}
