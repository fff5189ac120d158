/**
 * TPM2_Certify (TPM 2.0 Part 3, 18.2) as raw command bytes, for tpm2_send.
 *
 * This is the one TPM command the reference client cannot ask tpm2-tools
 * 5.4 for: tpm2_certify 5.4 always sends its own fixed qualifyingData
 * (00 ff 55 aa), and the `tpm` attestation format needs qualifyingData =
 * SHA-256(keyAuthorization). tpm2-tools 5.8 and later have `tpm2_certify
 * --qualifying-data`, which client/tpm.ts prefers when it is there. Every
 * other TPM command goes through its tpm2-tools program.
 *
 * The command is what tpm2_certify itself sends (test/tpm-certify.test.ts
 * checks its cpHash against `tpm2_certify --cphash`): both keys authorized
 * by an empty password (TPM_RS_PW), inScheme ECDSA with SHA-256.
 */

const TPM_ST_SESSIONS = 0x8002;
const TPM_CC_CERTIFY = 0x00000148;
const TPM_RS_PW = 0x40000009;
const TPM_ALG_ECDSA = 0x0018;
const TPM_ALG_SHA256 = 0x000b;
/** sizeof(TPMU_HA) of SHA-512: the largest qualifyingData a TPM2B_DATA holds. */
const MAX_QUALIFYING_DATA = 64;
/** sizeof(TPMS_ATTEST) bounds the certifyInfo; a response larger than a TPM's command buffer is no answer. */
const MAX_RESPONSE = 4096;

const u16 = (value: number) => Buffer.from([(value >> 8) & 0xff, value & 0xff]);
const u32 = (value: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes;
};

/** A TPM2B: a 16-bit size, then the bytes. */
const tpm2b = (bytes: Buffer) => Buffer.concat([u16(bytes.length), bytes]);

/** An empty-password authorization (Part 1, 19.8.4): TPM_RS_PW, no nonce, continueSession, no hmac. */
const passwordAuth = () => Buffer.concat([u32(TPM_RS_PW), u16(0), Buffer.from([0x01]), u16(0)]);

function checkHandle(name: string, handle: number): void {
  if (!Number.isInteger(handle) || handle < 0 || handle > 0xffffffff) throw new RangeError(`${name} must be a 32-bit TPM handle`);
}

/** The command's parameter area: qualifyingData (TPM2B_DATA), inScheme (TPMT_SIG_SCHEME ECDSA, SHA-256). What cpHash covers, after the names. */
export function certifyParameters(qualifyingData: Buffer): Buffer {
  if (qualifyingData.length > MAX_QUALIFYING_DATA) throw new RangeError(`qualifyingData holds at most ${MAX_QUALIFYING_DATA} bytes`);
  return Buffer.concat([tpm2b(qualifyingData), u16(TPM_ALG_ECDSA), u16(TPM_ALG_SHA256)]);
}

/** TPM2_Certify of `objectHandle` by `signHandle` (an ECC signing key), both loaded or persistent. */
export function certifyCommand(objectHandle: number, signHandle: number, qualifyingData: Buffer): Buffer {
  checkHandle('objectHandle', objectHandle);
  checkHandle('signHandle', signHandle);
  const authorizations = Buffer.concat([passwordAuth(), passwordAuth()]);
  const body = Buffer.concat([
    u32(TPM_CC_CERTIFY), u32(objectHandle), u32(signHandle),
    u32(authorizations.length), authorizations, certifyParameters(qualifyingData),
  ]);
  return Buffer.concat([u16(TPM_ST_SESSIONS), u32(2 + 4 + body.length), body]);
}

/** A TPM's refusal, with its response code (Part 2, 6.6). */
export class TpmResponseError extends Error {
  constructor(readonly code: number) {
    super(`the TPM refused TPM2_Certify with response code 0x${code.toString(16).padStart(8, '0')}`);
  }
}

/**
 * The response of TPM2_Certify: certifyInfo (the TPMS_ATTEST inside its
 * TPM2B_ATTEST) and signature (the marshalled TPMT_SIGNATURE), every
 * length checked against the bytes there are.
 */
export function parseCertifyResponse(response: Buffer): { certInfo: Buffer; signature: Buffer } {
  const fail = (why: string): never => {
    throw new Error(`malformed TPM2_Certify response: ${why}`);
  };
  if (response.length < 10) fail(`${response.length} bytes, less than a response header`);
  if (response.length > MAX_RESPONSE) fail(`${response.length} bytes`);
  const tag = response.readUInt16BE(0);
  const size = response.readUInt32BE(2);
  const code = response.readUInt32BE(6);
  if (size !== response.length) fail(`its header says ${size} bytes, ${response.length} came`);
  if (code !== 0) throw new TpmResponseError(code);
  if (tag !== TPM_ST_SESSIONS) fail(`tag 0x${tag.toString(16)} is not TPM_ST_SESSIONS`);
  if (response.length < 16) fail('no parameter area');
  const parameterSize = response.readUInt32BE(10);
  const parametersEnd = 14 + parameterSize;
  if (parametersEnd > response.length) fail(`parameterSize ${parameterSize} runs past the response`);
  const attestSize = response.readUInt16BE(14);
  const attestEnd = 16 + attestSize;
  if (attestSize === 0 || attestEnd > parametersEnd) fail(`certifyInfo size ${attestSize} does not fit the parameters`);
  // TPMT_SIGNATURE: sigAlg, then for ECDSA hash | TPM2B r | TPM2B s; it ends where the parameters end.
  if (parametersEnd - attestEnd < 2) fail('no signature');
  return { certInfo: Buffer.from(response.subarray(16, attestEnd)), signature: Buffer.from(response.subarray(attestEnd, parametersEnd)) };
}
