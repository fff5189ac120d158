import * as x509 from '@peculiar/x509';
import type { KeyHandle } from '../hsm/provider.ts';
import { HsmCryptoKey, signingAlgorithm } from '../hsm/webcrypto.ts';
import type { CaName } from '../store/types.ts';

/** What a certificate needs beyond the issuer: everything the profile decides. */
export interface CertificateTemplate {
  serialNumber: string;
  subject: x509.Name;
  publicKey: x509.PublicKey;
  notBefore: Date;
  notAfter: Date;
  extensions: x509.Extension[];
}

/** The CA's key is not in the token: the root kept offline between ceremonies (SPEC section 1). */
export class OfflineKeyError extends Error {
  override readonly name = 'OfflineKeyError';
}

/** One CA of the hierarchy: its certificate and, unless it is kept offline, its key in the token. */
export class Issuer {
  constructor(
    readonly name: CaName,
    readonly certificate: x509.X509Certificate,
    private readonly signingKey: KeyHandle | undefined,
    private readonly crypto: Crypto,
  ) {}

  get online(): boolean {
    return this.signingKey !== undefined;
  }

  /** The key in the token; throws OfflineKeyError when the CA is kept offline. */
  get key(): KeyHandle {
    if (!this.signingKey) throw new OfflineKeyError(`the ${this.name} CA key is offline: connect the token that holds it for this ceremony`);
    return this.signingKey;
  }

  private aki?: Promise<x509.AuthorityKeyIdentifierExtension>;

  /** The AKI extension of everything this CA signs; computed once, as it never changes. */
  authorityKeyIdentifier(): Promise<x509.AuthorityKeyIdentifierExtension> {
    this.aki ??= x509.AuthorityKeyIdentifierExtension.create(this.certificate, false, this.crypto);
    return this.aki;
  }

  get notAfter(): Date {
    return this.certificate.notAfter;
  }

  /** Signs a certificate with the HSM key; the issuer name is this CA's subject. */
  async sign(template: CertificateTemplate): Promise<x509.X509Certificate> {
    return signWithKey(this.key, this.crypto, this.certificate.subjectName, template);
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
