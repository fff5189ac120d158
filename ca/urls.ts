/**
 * Publication URLs on the plain-HTTP base URL (docs/operators/lifecycle.md). Each CA is
 * named by its slug: `root`, `factory`, `operational`, then `operational-2`
 * and so on after rollovers, so a certificate's AIA and CDP always lead to
 * its own issuer and that issuer's CRL.
 */
export function crlUrl(baseUrl: string, slug: string): string {
  return `${baseUrl}/crl/${slug}.crl`;
}

/** One shard of a CA's CRL (a complete CRL for the certificates issued into that shard). */
export function crlShardUrl(baseUrl: string, slug: string, shard: number): string {
  return `${baseUrl}/crl/${slug}/${shard}.crl`;
}

export function caCertificateUrl(baseUrl: string, slug: string): string {
  return `${baseUrl}/ca/${slug}.crt`;
}

export function ocspUrl(baseUrl: string): string {
  return `${baseUrl}/ocsp`;
}
