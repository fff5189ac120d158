/** Pre-signed responses are valid 4 days and signed again after 2 (docs/operators/lifecycle.md). */
export const OCSP_VALIDITY_MS = 4 * 24 * 3600 * 1000;
export const OCSP_REFRESH_AFTER_MS = 2 * 24 * 3600 * 1000;
/** Pre-signed responses a server keeps in memory by default (DEVID_OCSP_CACHE_ENTRIES): 100,000 certificates, a SHA-1 and a SHA-256 CertID each. */
export const OCSP_CACHE_ENTRIES = 200_000;
