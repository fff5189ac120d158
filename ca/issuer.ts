import * as x509 from '@peculiar/x509';
import type { KeyHandle } from '../hsm/provider.ts';
import { HsmCryptoKey, signingAlgorithm } from '../hsm/webcrypto.ts';
import type { CaCertificateRecord, CaRole } from '../store/types.ts';
import { signatureAlgorithmFor, type Signer, type TbsSignature } from './signer.ts';
import { caCertificateUrl, crlShardUrl, crlUrl, ocspUrl } from './urls.ts';

/** What a CA certificate needs beyond its issuer (root and intermediates are built with @peculiar/x509). */
export interface CertificateTemplate {
  serialNumber: string;
  subject: x509.Name;
  publicKey: x509.PublicKey;
  notBefore: Date;
  notAfter: Date;
  extensions: x509.Extension[];
}

/** An extension as profiles hold it; the encoder writes the DER. */
export interface ProfileExtension {
  type: string;
  critical: boolean;
  value: Buffer;
}

/** The end-entity extensions that depend only on the issuer and the base URL: built once with @peculiar/x509. */
export interface PublicationExtensions {
  authorityInfoAccess: ProfileExtension;
  crlDistributionPoints: ProfileExtension;
}

/** The CA's key is not in the token: the root kept offline between ceremonies (docs/reference/certificates.md). */
export class OfflineKeyError extends Error {
  override readonly name = 'OfflineKeyError';
}

/** The slug that names a CA in labels and URLs: `operational`, then `operational-2` after a rollover. */
export function caSlug(role: CaRole, generation: number): string {
  return generation === 1 ? role : `${role}-${generation}`;
}

/** CKA_LABEL of a CA key: for people; the recorded CKA_ID finds it (docs/reference/certificates.md). */
export function caKeyLabel(role: CaRole, generation: number): string {
  return `devid-${caSlug(role, generation)}`;
}

export function fromPeculiar(extension: x509.Extension): ProfileExtension {
  return { type: extension.type, critical: extension.critical, value: Buffer.from(extension.value) };
}

/**
 * One CA of the hierarchy: its CA-certificate row (the issuer identity every
 * certificate points at), its certificate and, unless kept offline, a signer
 * for its key in the token.
 */
export class Issuer {
  /** DER of the subject Name: the issuer field of everything this CA signs. */
  readonly subjectDer: Buffer;
  /** DER AlgorithmIdentifier of this CA's signatures. */
  readonly signatureAlgorithm: Buffer;
  /** The AKI of everything this CA signs. */
  readonly authorityKeyIdentifier: ProfileExtension;
  private readonly publication = new Map<string, PublicationExtensions>();
  /** The base URL each built CDP value names (hex of the value), to find a shard's CDP from a profile's. */
  private readonly cdpBaseUrl = new Map<string, string>();
  private readonly shardCdps = new Map<string, ProfileExtension>();

  constructor(
    readonly record: CaCertificateRecord,
    readonly certificate: x509.X509Certificate,
    private readonly signer: Signer | undefined,
    private readonly crypto: Crypto,
  ) {
    this.subjectDer = Buffer.from(certificate.subjectName.toArrayBuffer());
    this.signatureAlgorithm = signatureAlgorithmFor(record.publicKey);
    this.authorityKeyIdentifier = fromPeculiar(new x509.AuthorityKeyIdentifierExtension(record.ski.toString('hex'), false));
  }

  get id(): number {
    return this.record.id;
  }

  get role(): CaRole {
    return this.record.role;
  }

  get slug(): string {
    return caSlug(this.record.role, this.record.generation);
  }

  get notAfter(): Date {
    return this.record.notAfter;
  }

  get online(): boolean {
    return this.signer !== undefined;
  }

  /** The key in the token; throws OfflineKeyError when the CA is kept offline. */
  get key(): KeyHandle {
    return this.requireSigner().key;
  }

  /** Signs DER to be signed (a TBSCertificate, TBSCertList, ResponseData or checkpoint) with the HSM key. */
  signTbs(tbs: Uint8Array): Promise<TbsSignature> {
    return this.requireSigner().sign(tbs);
  }

  /** The AIA and CDP of everything this CA signs, for a base URL; computed once per base URL. */
  publicationExtensions(baseUrl: string): PublicationExtensions {
    let built = this.publication.get(baseUrl);
    if (!built) {
      built = {
        authorityInfoAccess: fromPeculiar(new x509.AuthorityInfoAccessExtension({
          ocsp: [ocspUrl(baseUrl)],
          caIssuers: [caCertificateUrl(baseUrl, this.slug)],
        })),
        crlDistributionPoints: fromPeculiar(new x509.CRLDistributionPointsExtension([crlUrl(baseUrl, this.slug)])),
      };
      this.publication.set(baseUrl, built);
      this.cdpBaseUrl.set(built.crlDistributionPoints.value.toString('hex'), baseUrl);
    }
    return built;
  }

  /**
   * The CRL distribution point of one shard of this CA's CRL, in place of
   * `cdp`, the whole-CRL one publicationExtensions made for some base URL;
   * undefined when `cdp` is not one of those.
   */
  shardCrlDistributionPoints(cdp: ProfileExtension, shard: number): ProfileExtension | undefined {
    const baseUrl = this.cdpBaseUrl.get(cdp.value.toString('hex'));
    if (baseUrl === undefined) return undefined;
    const key = `${shard} ${baseUrl}`;
    let built = this.shardCdps.get(key);
    if (!built) {
      built = fromPeculiar(new x509.CRLDistributionPointsExtension([crlShardUrl(baseUrl, this.slug, shard)]));
      this.shardCdps.set(key, built);
    }
    return built;
  }

  /** Signs a certificate with @peculiar/x509 outside the issuance pipeline: an intermediate or the audit key's (ceremonies), an OCSP responder's. */
  async signCaCertificate(template: CertificateTemplate): Promise<x509.X509Certificate> {
    return signWithKey(this.key, this.crypto, this.certificate.subjectName, template);
  }

  private requireSigner(): Signer {
    if (!this.signer) throw new OfflineKeyError(`the ${this.slug} CA key is offline: connect the token that holds it for this ceremony`);
    return this.signer;
  }
}

/** Signs a certificate with a key in the token (a self-signed root names itself as issuer). */
export async function signWithKey(
  key: KeyHandle,
  crypto: Crypto,
  issuerName: x509.Name,
  template: CertificateTemplate,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create(
    { ...template, issuer: issuerName, signingKey: new HsmCryptoKey(key), signingAlgorithm: signingAlgorithm(key) },
    crypto,
  );
}
