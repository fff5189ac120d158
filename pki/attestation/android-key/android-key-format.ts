import { verify } from 'node:crypto';
import { SecurityLevel } from '@peculiar/asn1-android';
import type { CheckedKey } from '../../public-key.ts';
import { AttestationError, type AttestationEnvelope } from '../attestation-object.ts';
import { COSE_ALGORITHMS } from '../cose.ts';
import type { AttestationChallenge, AttestationEvidence, AttestationFormat, CheckFailure } from '../format.ts';
import { parseFreshLeafChain, serialHexOf } from '../fresh-leaf-chain.ts';
import { keyDescriptionOf, SECURITY_LEVEL_NAMES, type AndroidKeyDescription } from './key-description.ts';
import { ANDROID_STATUS_LIST, type AttestationStatusList } from './status-list.ts';

export const ANDROID_KEY_FMT = 'android-key';

/** COSE algorithms Android's KeyMint signs with. */
const ANDROID_COSE_ALGORITHMS = new Set([-7, -35, -257]);
const MAX_SIG = 1024;
/** KM_ORIGIN_GENERATED, KM_PURPOSE_SIGN (Keymaster / KeyMint tags). */
const ORIGIN_GENERATED = 0;
const PURPOSE_SIGN = 2;

const shape = (detail: string) => new AttestationError('attestation object', detail);

/** An android-key statement that parsed: x5c[0]'s key and KeyDescription, the signature, and the chain's certificate serials. */
export interface AndroidKeyStatement {
  alg: number;
  sig: Buffer;
  x5c: Buffer[];
  key: CheckedKey;
  description: AndroidKeyDescription;
  serialsHex: string[];
}

/** attStmt of fmt "android-key" (WebAuthn 8.4, as step-ca) = {"alg", "sig", "x5c"}: exactly these; authData omitted, since the attestation binds the key authorization itself. */
export function parseAndroidKeyStatement(envelope: Pick<AttestationEnvelope, 'attStmt' | 'authData'>): AndroidKeyStatement {
  const s = envelope.attStmt;
  if (envelope.authData && envelope.authData.length > 0) throw shape(`fmt ${ANDROID_KEY_FMT} binds the key authorization through attestationChallenge: omit authData`);
  const alg = s.get('alg');
  const sig = s.get('sig');
  const x5c = s.get('x5c');
  if (s.size !== 3 || !Number.isInteger(alg) || !(sig instanceof Uint8Array) || sig.length === 0 || sig.length > MAX_SIG) {
    throw shape(`attStmt must be {"alg": int, "sig": bytes (1 to ${MAX_SIG}), "x5c": [bytes, ...]}`);
  }
  const { chain, certificates, key } = parseFreshLeafChain(x5c);
  return { alg: alg as number, sig: Buffer.from(sig), x5c: chain, key, description: keyDescriptionOf(certificates[0]!), serialsHex: certificates.map(serialHexOf) };
}

/** Check 3's signature: alg fits x5c[0]'s key, and sig verifies over the key authorization's octets. */
export function androidSignatureProblem(statement: AndroidKeyStatement, signerSpki: Buffer, challenge: AttestationChallenge): CheckFailure | undefined {
  const alg = COSE_ALGORITHMS[statement.alg];
  const key = statement.key;
  if (!alg || !ANDROID_COSE_ALGORITHMS.has(statement.alg) || alg.kind !== key.kind || (alg.curve && alg.curve !== key.curve)) {
    return { check: 'check 3 (alg)', detail: `COSE alg ${statement.alg} does not fit the ${key.keyType} key of x5c[0] (android-key signs with -7 ES256, -35 ES384 or -257 RS256)` };
  }
  if (!signerSpki.equals(key.spki)) return { check: 'check 3 (sig)', detail: 'the signing key is not the key of x5c[0]' };
  let valid = false;
  try {
    valid = verify(alg.hash!, Buffer.from(challenge.keyAuthorization, 'utf8'), key.key, statement.sig);
  } catch {
    valid = false;
  }
  return valid ? undefined : { check: 'check 3 (sig)', detail: 'sig does not verify with the key of x5c[0] over the key authorization' };
}

/** The rest of check 3: the KeyDescription answers this challenge, from secure hardware, for a key generated there to sign. */
export function androidBindingProblem(statement: AndroidKeyStatement, challenge: AttestationChallenge): CheckFailure | undefined {
  const d = statement.description;
  if (!d.challenge.equals(Buffer.from(challenge.keyAuthorization, 'utf8'))) {
    return { check: 'check 3 (attestationChallenge)', detail: 'attestationChallenge is not the key authorization (token "." account key thumbprint)' };
  }
  if (d.securityLevel !== SecurityLevel.trustedEnvironment && d.securityLevel !== SecurityLevel.strongBox) {
    return { check: 'check 3 (attestationSecurityLevel)', detail: `attestationSecurityLevel is ${SECURITY_LEVEL_NAMES[d.securityLevel] ?? d.securityLevel}: only TrustedEnvironment or StrongBox keys are accepted` };
  }
  if (d.allApplications) return { check: 'check 3 (allApplications)', detail: 'the key may be used by every application (allApplications): WebAuthn 8.4.1 refuses it' };
  if (d.teeOrigin !== ORIGIN_GENERATED || !d.teePurposes.includes(PURPOSE_SIGN)) {
    return { check: 'check 3 (teeEnforced)', detail: 'teeEnforced must say the key was generated in the secure hardware (origin GENERATED) and may sign (purpose SIGN)' };
  }
  return undefined;
}

/** Where the serial is read, for refusals: the software's word is never taken. */
function serialProblemDetail(d: AndroidKeyDescription): string {
  return d.softwareSerial
    ? 'attestationIdSerial is only in softwareEnforced, which the secure hardware does not vouch for: the device must attest its serial from teeEnforced (device ID attestation)'
    : 'attestationIdSerial is not in teeEnforced: the device must attest its serial (device ID attestation)';
}

/**
 * fmt "android-key" (docs/device-makers/protocol.md): Android Key
 * Attestation of the new key, whose certificate x5c[0] Android's KeyMint
 * made for it, chaining to Google's roots registered as a manufacturer;
 * every certificate of the chain is checked against the status list.
 */
export function androidKeyFormat(statusList: AttestationStatusList): AttestationFormat {
  return {
    fmt: ANDROID_KEY_FMT,
    parse(envelope): AttestationEvidence {
      const statement = parseAndroidKeyStatement(envelope);
      const serial = statement.description.teeSerial;
      return {
        fmt: ANDROID_KEY_FMT,
        chain: statement.x5c,
        key: statement.key,
        counter: 0,
        firmware: null,
        identity: { kind: 'manufacturer-serial', serial, ...(serial === null ? { serialProblem: serialProblemDetail(statement.description) } : {}) },
        signatureProblem: (signerSpki, challenge) => androidSignatureProblem(statement, signerSpki, challenge),
        bindingProblem: (challenge) => androidBindingProblem(statement, challenge),
        revocationProblem: async (now) => {
          const problem = await statusList.problem(statement.serialsHex, now);
          return problem ? { check: 'check 1 (status list)', detail: problem } : undefined;
        },
      };
    },
  };
}

export const ANDROID_KEY = androidKeyFormat(ANDROID_STATUS_LIST);
