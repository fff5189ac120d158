import { verify } from 'node:crypto';
import { sha256 } from '../../../ca/digest.ts';
import { checkPublicKey, type CheckedKey } from '../../public-key.ts';
import { AttestationError, parseX5c, type AttestationEnvelope } from '../attestation-object.ts';
import { COSE_ALGORITHMS } from '../cose.ts';
import type { AttestationChallenge, AttestationEvidence, AttestationFormat, CheckFailure } from '../format.ts';
import { akCertificateProblem } from './ak-certificate.ts';
import { parseCertifyAttest, type CertifyAttest } from './attest.ts';
import { TPMA_OBJECT } from './constants.ts';
import { parsePublicArea, type PublicArea } from './public-area.ts';
import { parseTpmSignature, type TpmSignature } from './signature.ts';

/** A TPM2_Certify statement that parsed: the AK's chain and signature, what the TPM certified, and the certified key. */
export interface TpmStatement {
  alg: number;
  x5c: Buffer[];
  sig: TpmSignature;
  certInfo: Buffer;
  attest: CertifyAttest;
  publicArea: PublicArea;
}

/** The COSE algorithms a TPM signs certInfo with. */
const TPM_COSE_ALGORITHMS = new Set([-7, -35, -257]);
const MAX_STRUCTURE = 1024;

/** Attributes that keep a key in its TPM: created there, never duplicable, never moved to another parent; and a signing key. */
const REQUIRED_ATTRIBUTES: Array<[name: string, bit: number]> = [
  ['fixedTPM', TPMA_OBJECT.fixedTPM], ['fixedParent', TPMA_OBJECT.fixedParent],
  ['sensitiveDataOrigin', TPMA_OBJECT.sensitiveDataOrigin], ['sign', TPMA_OBJECT.sign],
];

const shape = (detail: string) => new AttestationError('attestation object', detail);
const isBytes = (value: unknown, max = MAX_STRUCTURE): value is Uint8Array => value instanceof Uint8Array && value.length > 0 && value.length <= max;

/**
 * attStmt of fmt "tpm" (WebAuthn 8.3) = {"ver": "2.0", "alg", "x5c", "sig",
 * "certInfo", "pubArea"}: exactly these members; authData omitted (or
 * empty), since extraData binds the key authorization.
 */
export function parseTpmStatement(envelope: Pick<AttestationEnvelope, 'attStmt' | 'authData'>): TpmStatement {
  const s = envelope.attStmt;
  if (envelope.authData && envelope.authData.length > 0) throw shape('fmt tpm binds the challenge through certInfo.extraData: omit authData');
  if (s.size !== 6 || s.get('ver') !== '2.0') throw shape('attStmt must be {"ver": "2.0", "alg", "x5c", "sig", "certInfo", "pubArea"}');
  const alg = s.get('alg');
  const sig = s.get('sig');
  const certInfo = s.get('certInfo');
  const pubArea = s.get('pubArea');
  if (!Number.isInteger(alg) || !isBytes(sig) || !isBytes(certInfo) || !isBytes(pubArea)) {
    throw shape(`attStmt.alg must be an integer, and sig, certInfo and pubArea byte strings of 1 to ${MAX_STRUCTURE} bytes`);
  }
  const x5c = parseX5c(s.get('x5c'));
  const attest = parseCertifyAttest(Buffer.from(certInfo));
  if (attest.clockInfo.clock === 0n || attest.clockInfo.clock > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new AttestationError('attStmt.certInfo', `clockInfo.clock ${attest.clockInfo.clock} is not a clock a TPM can show (1 to 2^53 - 1 ms)`);
  }
  return { alg: alg as number, x5c, sig: parseTpmSignature(Buffer.from(sig)), certInfo: Buffer.from(certInfo), attest, publicArea: parsePublicArea(Buffer.from(pubArea)) };
}

/** Check 3's signature part: alg fits the AK of x5c[0] and the TPMT_SIGNATURE, and the signature over certInfo verifies. */
export function tpmSignatureProblem(statement: TpmStatement, signerSpki: Buffer): CheckFailure | undefined {
  let signer: CheckedKey;
  try {
    signer = checkPublicKey(signerSpki);
  } catch (err) {
    return { check: 'check 3 (alg)', detail: `the key of x5c[0] is not accepted: ${(err as Error).message}` };
  }
  const alg = COSE_ALGORITHMS[statement.alg];
  if (!alg || !TPM_COSE_ALGORITHMS.has(statement.alg) || alg.kind !== signer.kind || (alg.curve && alg.curve !== signer.curve)) {
    return { check: 'check 3 (alg)', detail: `COSE alg ${statement.alg} does not fit the ${signer.keyType} key of x5c[0] (a TPM signs with -7 ES256, -35 ES384 or -257 RS256)` };
  }
  const { sig } = statement;
  if ((sig.scheme === 'ecdsa') !== (signer.kind === 'ec') || (sig.hash !== null && sig.hash !== alg.hash)) {
    return { check: 'check 3 (alg)', detail: `the TPMT_SIGNATURE (${sig.scheme}, ${sig.hash}) is not of COSE alg ${statement.alg}` };
  }
  let valid = false;
  try {
    valid = verify(alg.hash!, statement.certInfo, signer.key, sig.bytes);
  } catch {
    valid = false;
  }
  return valid ? undefined : { check: 'check 3 (sig)', detail: 'the signature does not verify with the key of x5c[0] over certInfo' };
}

/** The rest of check 3: certInfo answers this challenge, certifies exactly pubArea, and the key can never leave its TPM. */
export function tpmBindingProblem(statement: TpmStatement, challenge: AttestationChallenge): CheckFailure | undefined {
  const { attest, publicArea } = statement;
  if (!attest.extraData.equals(sha256(challenge.keyAuthorization))) {
    return { check: 'check 3 (extraData)', detail: 'certInfo.extraData is not the SHA-256 of the key authorization (TPM2_Certify qualifyingData)' };
  }
  if (!attest.name.equals(publicArea.name)) {
    return { check: 'check 3 (name)', detail: 'certInfo.attested.name is not the Name of pubArea (nameAlg || H_nameAlg(pubArea)): the TPM certified another key' };
  }
  const missing = REQUIRED_ATTRIBUTES.filter(([, bit]) => (publicArea.objectAttributes & bit) === 0).map(([name]) => name);
  if (missing.length > 0) {
    return {
      check: 'check 3 (objectAttributes)',
      detail: `the attested key lacks ${missing.join(', ')}: a key that could leave its TPM (duplicable, imported or not for signing) is refused; create it with fixedtpm|fixedparent|sensitivedataorigin|sign`,
    };
  }
  return undefined;
}

/** safe = NO: after an unorderly shutdown the clock may have gone back; the device attests again once its TPM has saved its clock. */
function clockRetryProblem(statement: TpmStatement): CheckFailure | undefined {
  if (statement.attest.clockInfo.safe) return undefined;
  return {
    check: 'check 4 (clock)',
    detail: 'the TPM reports clockInfo.safe = NO (its clock may have gone back after an unorderly shutdown); attest again with a new order once it reports YES',
  };
}

/**
 * fmt "tpm" (docs/device-makers/protocol.md): a TPM2_Certify of the new
 * operational key by the TPM's attestation key, whose certificate is x5c[0];
 * the counter is the TPM's clock (ms), which must move forward.
 */
export const TPM: AttestationFormat = {
  fmt: 'tpm',
  parse(envelope): AttestationEvidence {
    const statement = parseTpmStatement(envelope);
    const retryProblem = clockRetryProblem(statement);
    return {
      fmt: 'tpm',
      chain: statement.x5c,
      key: statement.publicArea.key,
      counter: Number(statement.attest.clockInfo.clock),
      firmware: null,
      ...(retryProblem ? { retryProblem } : {}),
      signatureProblem: (signerSpki) => tpmSignatureProblem(statement, signerSpki),
      bindingProblem: (challenge) => tpmBindingProblem(statement, challenge),
      // Our own birth certificates of AKs follow our profile; another manufacturer's AK certificate must meet WebAuthn 8.3.1.
      outsideLeafProblem: akCertificateProblem,
    };
  },
};
