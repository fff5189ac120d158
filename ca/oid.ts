/** Longest OID accepted from configuration or requests: real enterprise OIDs are far shorter. */
const MAX_OID_LENGTH = 128;
const MAX_ARCS = 32;

/**
 * Checks an OID the operator configures for a certificate extension or a
 * model's hwType. Every arc must be below 2^28: Go's crypto/x509,
 * pyca/cryptography before 44 and Botan refuse a whole certificate whose
 * extension OID has a larger arc (docs/reference/certificates.md). Returns the problem, or
 * undefined when the OID is fine.
 */
export function extensionOidProblem(oid: string): string | undefined {
  if (oid.length > MAX_OID_LENGTH) return `the OID is longer than ${MAX_OID_LENGTH} characters`;
  if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(oid)) {
    return `"${oid}" is not a dotted OID such as 1.3.6.1.4.1.99999.1`;
  }
  const arcs = oid.split('.').map((arc) => BigInt(arc));
  if (arcs.length > MAX_ARCS) return `the OID has more than ${MAX_ARCS} arcs`;
  if (arcs[0]! < 2n && arcs[1]! >= 40n) return `"${oid}": the second arc must be below 40 under arc ${arcs[0]}`;
  const big = arcs.find((arc) => arc >= 2n ** 28n);
  if (big !== undefined) {
    return `"${oid}" has the arc ${big}, which is 2^28 or more: Go's crypto/x509, pyca/cryptography before 44 and Botan refuse any certificate carrying it (2.25.<UUID> OIDs have this problem); use an OID from your enterprise arc`;
  }
  return undefined;
}
