/** TPM 2.0 Part 2 constants this format reads. */

/** TPM_GENERATED_VALUE: only the TPM writes it at the start of what it signs with a restricted key. */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;

export const TPM_ALG = {
  RSA: 0x0001, SHA1: 0x0004, SHA256: 0x000b, SHA384: 0x000c, SHA512: 0x000d, NULL: 0x0010,
  RSASSA: 0x0014, RSAES: 0x0015, RSAPSS: 0x0016, OAEP: 0x0017, ECDSA: 0x0018, ECDH: 0x0019, ECDAA: 0x001a, SM2: 0x001b,
  ECSCHNORR: 0x001c, ECMQV: 0x001d, ECC: 0x0023, AES: 0x0006, SM4: 0x0013, CAMELLIA: 0x0026,
  MGF1: 0x0007, KDF1_SP800_56A: 0x0020, KDF2: 0x0021, KDF1_SP800_108: 0x0022,
} as const;

/** Schemes by TPM_ALG_ID, with the size of their details in 16-bit words (TPMU_ASYM_SCHEME, TPMU_KDF_SCHEME). */
export const RSA_SCHEMES: Readonly<Record<number, number>> = { [TPM_ALG.RSASSA]: 1, [TPM_ALG.RSAES]: 0, [TPM_ALG.RSAPSS]: 1, [TPM_ALG.OAEP]: 1 };
export const ECC_SCHEMES: Readonly<Record<number, number>> = {
  [TPM_ALG.ECDSA]: 1, [TPM_ALG.ECDH]: 1, [TPM_ALG.ECDAA]: 2, [TPM_ALG.SM2]: 1, [TPM_ALG.ECSCHNORR]: 1, [TPM_ALG.ECMQV]: 1,
};
export const KDF_SCHEMES: Readonly<Record<number, number>> = { [TPM_ALG.MGF1]: 1, [TPM_ALG.KDF1_SP800_56A]: 1, [TPM_ALG.KDF2]: 1, [TPM_ALG.KDF1_SP800_108]: 1 };
/** TPMI_ALG_SYM_OBJECT. */
export const SYMMETRIC_OBJECT_ALGORITHMS: ReadonlySet<number> = new Set([TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA]);

/**
 * Name and signature hash algorithms, as node:crypto names them, and their
 * digest sizes. No SHA-1: with chosen-prefix collisions, a SHA-1 Name could
 * stand for a pubArea the TPM never held (a fixedTPM key in place of a duplicable one).
 */
export const HASH_ALGORITHMS: Record<number, { name: string; size: number }> = {
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
