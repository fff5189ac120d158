/** Pre-signed responses are valid 4 days and signed again after 2 (docs/operators/lifecycle.md). */
export const OCSP_VALIDITY_MS = 4 * 24 * 3600 * 1000;
export const OCSP_REFRESH_AFTER_MS = 2 * 24 * 3600 * 1000;
