import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import type { CertificateKind } from '../store/types.ts';
import { OID } from './asn1.ts';
import type { Issuer, ProfileExtension } from './issuer.ts';
import { END_ENTITY, subjectKeyIdentifier, type Profile } from './profiles.ts';

/** A profile that would produce a certificate we must not sign. */
export class ProfileLintError extends Error {
  override readonly name = 'ProfileLintError';
}

/** Which CA signs which kind (docs/reference/certificates.md). */
const ISSUER_ROLE: Record<CertificateKind, 'factory' | 'operational' | 'firmware'> = {
  birth: 'factory', operational: 'operational', server: 'operational', support: 'operational', 'firmware-signer': 'firmware',
};

/** The extended key usage each kind must carry: birth certificates authenticate their device as TLS clients, like operational ones. */
const KEY_PURPOSES: Record<CertificateKind, ProfileExtension[]> = {
  birth: [END_ENTITY.clientAuth],
  operational: [END_ENTITY.clientAuth, END_ENTITY.clientAndServerAuth],
  server: [END_ENTITY.serverAuth],
  support: [END_ENTITY.clientAuth],
  'firmware-signer': [END_ENTITY.codeSigning],
};

/** A firmware signer is named by its subject alone (OU=Firmware Signer, CN=<model or line>): it speaks for no device or host. */
const NO_SUBJECT_ALT_NAME: ReadonlySet<CertificateKind> = new Set(['firmware-signer']);

const same = (a: ProfileExtension | undefined, b: ProfileExtension) => a !== undefined && a.critical === b.critical && a.value.equals(b.value);

/**
 * Checks a profile against docs/reference/certificates.md before the HSM is asked to sign it (after
 * Boulder's lint-before-sign): the right CA, validity within the issuer,
 * CA:FALSE and digitalSignature (critical), the SKI of this key and the AKI of
 * this issuer, AIA (OCSP, caIssuers) and CDP URLs that lead to this issuer,
 * the extended key usage of the kind, one of each extension. The serial's
 * form (positive, 128 bits) is checked where it is drawn.
 */
export function lintProfile(issuer: Issuer, profile: Profile): void {
  const fail = (reason: string) => {
    throw new ProfileLintError(`${profile.kind} certificate from the ${issuer.slug} CA: ${reason}`);
  };
  if (issuer.role !== ISSUER_ROLE[profile.kind]) fail(`${profile.kind} certificates are signed by the ${ISSUER_ROLE[profile.kind]} CA`);
  if (!issuer.record.active) fail('a retired CA signs no new certificates');
  if (!(profile.notBefore < profile.notAfter)) fail('notAfter is not after notBefore');
  if (profile.notAfter > issuer.notAfter) fail('notAfter is beyond the issuer\'s notAfter');
  if (profile.subject.length <= 2) fail('the subject is empty');

  const byType = new Map<string, ProfileExtension>();
  for (const ext of profile.extensions) {
    if (byType.has(ext.type)) fail(`extension ${ext.type} appears twice`);
    byType.set(ext.type, ext);
  }
  if (!same(byType.get(OID.basicConstraints), END_ENTITY.basicConstraints)) fail('basicConstraints must be CA:FALSE, critical');
  if (!same(byType.get(OID.keyUsage), END_ENTITY.keyUsage)) fail('keyUsage must be digitalSignature, critical');
  if (!same(byType.get(OID.subjectKeyIdentifier), subjectKeyIdentifier(profile.spki))) fail('the SKI is not that of the certified key');
  if (!same(byType.get(OID.authorityKeyIdentifier), issuer.authorityKeyIdentifier)) fail('the AKI is not the issuer\'s key identifier');
  checkPublication(issuer, byType.get(OID.authorityInfoAccess), byType.get(OID.crlDistributionPoints), fail);
  if (NO_SUBJECT_ALT_NAME.has(profile.kind)) {
    if (byType.has(OID.subjectAltName)) fail('carries a subjectAltName');
  } else if (!byType.has(OID.subjectAltName)) fail('a subjectAltName is required');
  const purposes = byType.get(OID.extKeyUsage);
  const allowed = KEY_PURPOSES[profile.kind];
  if (allowed.length === 0 ? purposes !== undefined : !allowed.some((p) => same(purposes, p))) {
    fail(allowed.length === 0 ? 'carries an extended key usage' : 'has the wrong extended key usage');
  }
  // An operational certificate says how it was reached: exactly one of the two assurance policies.
  const policies = byType.get(OID.certificatePolicies);
  if (profile.kind === 'operational' ? !same(policies, END_ENTITY.attestedPolicy) && !same(policies, END_ENTITY.mediatedPolicy) : policies !== undefined) {
    fail(profile.kind === 'operational' ? 'must carry exactly one assurance policy (attested or mediated)' : 'carries certificatePolicies');
  }
}

/** AIA and CDP values already checked for an issuer: they are built once per base URL, so each is parsed once. */
const checkedPublication = new WeakMap<Buffer, string>();

function checkPublication(issuer: Issuer, aia: ProfileExtension | undefined, cdp: ProfileExtension | undefined, fail: (reason: string) => never): void {
  if (!aia || aia.critical) return fail('a non-critical authorityInfoAccess is required');
  if (!cdp || cdp.critical) return fail('a non-critical cRLDistributionPoints is required');
  if (checkedPublication.get(aia.value) === issuer.slug && checkedPublication.get(cdp.value) === issuer.slug) return;
  const access = AsnConvert.parse(aia.value, asn1X509.AuthorityInfoAccessSyntax);
  const uris = (method: string) => access.filter((a) => a.accessMethod === method).map((a) => a.accessLocation.uniformResourceIdentifier ?? '');
  const ocsp = uris(asn1X509.id_ad_ocsp);
  const caIssuers = uris(asn1X509.id_ad_caIssuers);
  if (ocsp.length !== 1 || !/^http:\/\/.+\/ocsp$/.test(ocsp[0]!)) fail('the AIA needs one http:// OCSP URL');
  if (caIssuers.length !== 1 || !caIssuers[0]!.startsWith('http://') || !caIssuers[0]!.endsWith(`/ca/${issuer.slug}.crt`)) fail(`the AIA caIssuers URL must lead to /ca/${issuer.slug}.crt`);
  const points = AsnConvert.parse(cdp.value, asn1X509.CRLDistributionPoints);
  const crls = points.flatMap((p) => p.distributionPoint?.fullName?.map((n) => n.uniformResourceIdentifier ?? '') ?? []);
  if (crls.length !== 1 || !crls[0]!.startsWith('http://') || !crls[0]!.endsWith(`/crl/${issuer.slug}.crl`)) fail(`the CRL distribution point must lead to /crl/${issuer.slug}.crl`);
  checkedPublication.set(aia.value, issuer.slug);
  checkedPublication.set(cdp.value, issuer.slug);
}
