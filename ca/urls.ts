/**
 * Publication URLs on the plain-HTTP base URL (docs/operators/lifecycle.md). Each CA is
 * named by its slug: `root`, `factory`, `operational`, then `operational-2`
 * and so on after rollovers, so a certificate's AIA and CDP always lead to
 * its own issuer and that issuer's CRL.
 */
export function crlUrl(baseUrl: string, slug: string): string {
  return `${baseUrl}/crl/${slug}.crl`;
}

export function caCertificateUrl(baseUrl: string, slug: string): string {
  return `${baseUrl}/ca/${slug}.crt`;
}

export function ocspUrl(baseUrl: string): string {
  return `${baseUrl}/ocsp`;
}
