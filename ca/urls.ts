import type { CaName } from '../store/types.ts';

/** Publication URLs on the plain-HTTP base URL (SPEC section 6). */
export function crlUrl(baseUrl: string, ca: CaName): string {
  return `${baseUrl}/crl/${ca}.crl`;
}

export function caCertificateUrl(baseUrl: string, ca: CaName): string {
  return `${baseUrl}/ca/${ca}.crt`;
}

export function ocspUrl(baseUrl: string): string {
  return `${baseUrl}/ocsp`;
}
