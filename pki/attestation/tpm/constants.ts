/** TPM 2.0 Part 2 constants this format reads. */

/** TPM_GENERATED_VALUE: only the TPM writes it at the start of what it signs with a restricted key. */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;

export const TPM_ALG = {
  RSA: 0x0001, SHA1: 0x0004, SHA256: 0x000b, SHA384: 0x000c, SHA512: 0x000d, NULL: 0x0010,
  RSASSA: 0x0014, RSAES: 0x0015, RSAPSS: 0x0016, ECDSA: 0x0018, ECDAA: 0x001a, ECC: 0x0023,
} as const;

/** Name algorithms, as node:crypto names them, and their digest sizes. */
export const HASH_ALGORITHMS: Record<number, { name: string; size: number }> = {
  [TPM_ALG.SHA1]: { name: 'sha1', size: 20 },
  [TPM_ALG.SHA256]: { name: 'sha256', size: 32 },
  [TPM_ALG.SHA384]: { name: 'sha384', size: 48 },
  [TPM_ALG.SHA512]: { name: 'sha512', size: 64 },
};

/** TPM_ECC_CURVE values of the curves this CA accepts. */
export const ECC_CURVES: Record<number, { name: 'P-256' | 'P-384'; size: number }> = {
  0x0003: { name: 'P-256', size: 32 },
  0x0004: { name: 'P-384', size: 48 },
};

/** TPMA_OBJECT bits (Part 2, 8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** sizeof(TPMU_NAME) and sizeof(TPMT_HA): the bounds of TPM2B_NAME and TPM2B_DATA. */
export const MAX_NAME = 2 + 64;
export const MAX_DATA = 2 + 64;
export const MAX_DIGEST = 64;
/** TPM2B_PUBLIC_KEY_RSA: up to 4096-bit keys. */
export const MAX_RSA_KEY = 512;
/** TPM2B_ECC_PARAMETER: up to P-521. */
export const MAX_ECC_PARAMETER = 66;
