import * as x509 from '@peculiar/x509';
import type { Hierarchy } from '../ca/hierarchy.ts';
import { sha256Hex } from '../ca/digest.ts';
import { issueCertificate } from '../ca/issuance.ts';
import { birthProfile } from '../ca/profiles.ts';
import { conflict, forbidden, malformed } from '../errors/domain-error.ts';
import type { AuditLog } from '../registry/audit-log.ts';
import { bodyFields, checkModelName, checkName, checkSerial } from '../registry/identifiers.ts';
import { LOCKS, type Store } from '../store/store.ts';
import { StoreConflictError, type CertificateRecord, type DeviceRecord } from '../store/types.ts';
import { verifyCsr } from './csr.ts';

/** The factory line a token speaks for (SPEC section 3). */
export interface FactoryPrincipal {
  tokenId: string;
  line: string;
  /** null: every model. */
  models: string[] | null;
}

export interface BirthCertificateRequest {
  serial: string;
  model: string;
  batch: string;
  csr: string;
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
  store: Store;
  audit: AuditLog;
  hierarchy: Hierarchy;
  crypto: Crypto;
  baseUrl: string;
  clock: () => Date;
}

/** A key certified for another device: refused and audited outside the refused transaction. */
class CloneSuspected extends Error {
  constructor(readonly boundTo: string[]) {
    super('clone suspected');
  }
}

export function parseBirthRequest(body: unknown): BirthCertificateRequest {
  const { serial, model, batch, csr } = bodyFields(body, ['serial', 'model', 'batch', 'csr']);
  const checked = { serial: checkSerial(serial), model: checkModelName(model), batch: checkName('batch', batch) };
  if (typeof csr !== 'string' || csr.length === 0) throw malformed('csr must be a PEM or base64url DER PKCS#10 request');
  return { ...checked, csr };
}

/**
 * Birth certificates for factory lines (SPEC section 4). Safe to retry: the
 * same serial with the same key returns the existing certificate. The device
 * record, the certificate and the audit event commit together or not at all.
 */
export class FactoryService {
  constructor(private readonly deps: FactoryDeps) {}

  async requestBirthCertificate(principal: FactoryPrincipal, body: unknown): Promise<BirthCertificateResult> {
    const request = parseBirthRequest(body);
    if (principal.models && !principal.models.includes(request.model)) {
      throw forbidden(`this factory token may not request certificates for model ${request.model}`);
    }
    const { publicKey, keyType } = await verifyCsr(request.csr);
    const keySha256 = sha256Hex(publicKey.rawData);
    const actor = `token:${principal.tokenId}`;
    try {
      return await this.deps.store.transaction((tx) => this.issueOrReturn(tx, principal, request, publicKey, keySha256, keyType, actor));
    } catch (err) {
      const boundTo = err instanceof CloneSuspected ? err.boundTo
        : err instanceof StoreConflictError ? await this.deps.store.certificates.devicesWithKey(keySha256) : undefined;
      if (!boundTo) throw err;
      await this.recordCloneSignal(request, keySha256, boundTo, actor);
      throw conflict('this public key is already bound to another device; the attempt was recorded as a suspected clone');
    }
  }

  private async issueOrReturn(
    tx: Store, principal: FactoryPrincipal, request: BirthCertificateRequest,
    publicKey: Parameters<typeof birthProfile>[0]['publicKey'], keySha256: string, keyType: string, actor: string,
  ): Promise<BirthCertificateResult> {
    await tx.lock(LOCKS.device(request.serial));
    const model = await tx.models.byName(request.model);
    if (!model) throw malformed(`unknown model ${request.model}: an operator declares it with PUT /operator/v1/models/${request.model}`);

    const existing = await tx.devices.bySerial(request.serial);
    if (existing && !existing.reprovisionAllowed) {
      const result = await this.retry(tx, existing, principal, request, keySha256);
      await this.deps.audit.append(tx, { action: 'device.birth-certificate-returned', actor, device: request.serial, data: { certificateSerial: result.certificateSerial } });
      return result;
    }

    const holders = await tx.certificates.devicesWithKey(keySha256);
    if (existing && holders.includes(request.serial)) {
      throw conflict(`device ${request.serial} is being reprovisioned: its new birth certificate needs a key it has never had certified`);
    }
    const boundTo = holders.filter((serial) => serial !== request.serial);
    if (boundTo.length > 0) throw new CloneSuspected(boundTo);

    const { hierarchy, crypto, baseUrl } = this.deps;
    const now = this.deps.clock();
    const issuer = hierarchy.factory;
    const profile = await birthProfile({ issuer, publicKey, baseUrl, now, crypto }, {
      serial: request.serial, manufacturer: model.manufacturer, model: model.name, hwType: model.hwType,
    });
    const binding = { model: model.name, batch: request.batch, line: principal.line, factoryKeySha256: keySha256, state: 'manufactured' as const, reprovisionAllowed: false, updatedAt: now };
    // A reprovisioned device keeps its record (class, owner, history) and gets its new binding.
    const device: DeviceRecord = existing
      ? { ...existing, ...binding }
      : { serial: request.serial, deviceClass: null, owner: null, createdAt: now, ...binding };
    if (existing) await tx.devices.update(device);
    else await tx.devices.insert(device);
    const { certificate, record } = await issueCertificate(tx, { issuer, profile, publicKey, deviceSerial: request.serial, predecessorSha256: null, now });
    await this.deps.audit.append(tx, {
      action: existing ? 'device.reprovisioned' : 'device.manufactured',
      actor,
      device: request.serial,
      data: {
        model: model.name, batch: request.batch, line: principal.line, hwType: model.hwType, keyType, keySha256,
        certificateSerial: record.serial, certificateSha256: record.sha256,
      },
    });
    return this.result(201, certificate.toString('pem'), record, device);
  }

  /** The same serial again: the same key and details is a retry (200), anything else a conflict. */
  private async retry(tx: Store, device: DeviceRecord, principal: FactoryPrincipal, request: BirthCertificateRequest, keySha256: string): Promise<BirthCertificateResult> {
    if (device.factoryKeySha256 !== keySha256) throw conflict(`device ${device.serial} already has a birth certificate for a different key`);
    if (device.model !== request.model || device.batch !== request.batch || device.line !== principal.line) {
      throw conflict(`device ${device.serial} is registered with model ${device.model}, batch ${device.batch}, line ${device.line}`);
    }
    const births = (await tx.certificates.byDevice(device.serial, 'birth')).filter((c) => c.keySha256 === keySha256 && !c.revokedAt);
    const birth = births.at(-1);
    if (!birth) throw conflict(`device ${device.serial} has no live birth certificate for this key`);
    const pem = x509.PemConverter.encode(new Uint8Array(birth.der), 'CERTIFICATE');
    return this.result(200, pem, birth, device);
  }

  private result(status: 200 | 201, certificate: string, record: CertificateRecord, device: DeviceRecord): BirthCertificateResult {
    return {
      status,
      certificate,
      chain: this.deps.hierarchy.chainPem('factory'),
      certificateSerial: record.serial,
      device: { serial: device.serial, model: device.model, batch: device.batch, line: device.line, state: device.state },
    };
  }

  private async recordCloneSignal(request: BirthCertificateRequest, keySha256: string, boundTo: string[], actor: string): Promise<void> {
    await this.deps.store.transaction(async (tx) => {
      for (const serial of boundTo.length > 0 ? boundTo : [request.serial]) {
        await this.deps.audit.append(tx, {
          action: 'device.clone-suspected',
          actor,
          device: serial,
          data: { reason: 'factory key presented for another serial', requestedSerial: request.serial, model: request.model, batch: request.batch, keySha256 },
        });
      }
    });
  }
}
