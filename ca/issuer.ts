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

/** One CA of the hierarchy: its certificate and its key in the token. */
export class Issuer {
  readonly signingKey: HsmCryptoKey;

  constructor(
    readonly name: CaName,
    readonly certificate: x509.X509Certificate,
    readonly key: KeyHandle,
    private readonly crypto: Crypto,
  ) {
    this.signingKey = new HsmCryptoKey(key);
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
