import { MAX_DATA, MAX_NAME, TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY } from './constants.ts';
import { TpmReader } from './reader.ts';

/** TPMS_CLOCK_INFO: the TPM's clock (ms it has been powered, never going back while `safe`). */
export interface ClockInfo {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  /** TPMI_YES_NO: false after an unorderly shutdown, when the clock may have gone back. */
  safe: boolean;
}

/** TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY (TPM 2.0 Part 2, 10.12). */
export interface CertifyAttest {
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  /** TPMS_CERTIFY_INFO: the Name of the certified object and its qualified Name. */
  name: Buffer;
  qualifiedName: Buffer;
}

/**
 * certInfo: a TPMS_ATTEST that only TPM2_Certify makes (magic
 * TPM_GENERATED_VALUE, type TPM_ST_ATTEST_CERTIFY), read to its last byte.
 */
export function parseCertifyAttest(bytes: Buffer): CertifyAttest {
  const reader = new TpmReader(bytes, 'attStmt.certInfo');
  const magic = reader.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) throw reader.fail(`magic is 0x${magic.toString(16)}, not TPM_GENERATED_VALUE 0xff544347: the TPM did not make it`);
  const type = reader.u16('type');
  if (type !== TPM_ST_ATTEST_CERTIFY) throw reader.fail(`type is 0x${type.toString(16)}, not TPM_ST_ATTEST_CERTIFY 0x8017`);
  const qualifiedSigner = reader.sized('qualifiedSigner', MAX_NAME);
  const extraData = reader.sized('extraData', MAX_DATA);
  const clock = reader.u64('clockInfo.clock');
  const resetCount = reader.u32('clockInfo.resetCount');
  const restartCount = reader.u32('clockInfo.restartCount');
  const safe = reader.u8('clockInfo.safe');
  if (safe > 1) throw reader.fail(`clockInfo.safe is ${safe}, must be 0 (NO) or 1 (YES)`);
  const firmwareVersion = reader.u64('firmwareVersion');
  const name = reader.sized('attested.name', MAX_NAME);
  const qualifiedName = reader.sized('attested.qualifiedName', MAX_NAME);
  reader.end();
  return { qualifiedSigner, extraData, clockInfo: { clock, resetCount, restartCount, safe: safe === 1 }, firmwareVersion, name, qualifiedName };
}
