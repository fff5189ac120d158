import { verify as nodeVerify } from 'node:crypto';
import { sha256 } from '../../ca/digest.ts';
import type { FirmwareReport } from '../../store/types.ts';
import { checkPublicKey, type CheckedKey } from '../public-key.ts';
import { AttestationError, parseAuthenticatorData, parseDevidStatement, parseEnvelope, type AttestationEnvelope } from './attestation-object.ts';
import { COSE_ALGORITHMS, publicKeyFromCose } from './cose.ts';
import type { AttestationChallenge, AttestationEvidence, AttestationFormat, CheckFailure } from './format.ts';

/** An attestation object of fmt "devid" that parsed: its shape, authData, the new key and the firmware it reports. */
export interface ParsedAttestation {
  alg: number;
  sig: Buffer;
  x5c: Buffer[];
  authData: Buffer;
  rpIdHash: Buffer;
  credId: Buffer;
  signCount: number;
  /** The new operational key from the COSE_Key, checked and canonical. */
  key: CheckedKey;
  firmware: FirmwareReport | null;
}

/**
 * fmt "devid" (docs/device-makers/protocol.md): the WebAuthn `packed`
 * layout, x5c[0] the device's birth certificate (or under staged renewal its
 * operational one), authData with zero aaguid, credId the SHA-256 of the new
 * key's SPKI, the signature over authData | SHA-256(key authorization), and
 * the firmware in the "fw" extension.
 */
export function parseDevid(envelope: AttestationEnvelope): ParsedAttestation {
  const attObj = parseDevidStatement(envelope);
  const authData = parseAuthenticatorData(attObj.authData);
  return {
    ...attObj,
    rpIdHash: authData.rpIdHash,
    credId: authData.credId,
    signCount: authData.signCount,
    key: publicKeyFromCose(authData.credentialPublicKey),
    firmware: firmwareOf(authData.extensions),
  };
}

/** A whole "devid" attestation object parsed, without touching the database (the benchmark's parse step). */
export function parseDeviceAttestation(bytes: Buffer): ParsedAttestation {
  const envelope = parseEnvelope(bytes);
  if (envelope.fmt !== DEVID.fmt) throw new AttestationError('attestation object', 'must be {"fmt": "devid", "attStmt", "authData"}');
  return parseDevid(envelope);
}

/** Check 3's signature part: the COSE alg fits the key of x5c[0], and the signature over authData and the key authorization verifies. */
export function signatureProblem(attestation: ParsedAttestation, spki: Buffer, keyAuthorization: string): CheckFailure | undefined {
  let signer: CheckedKey;
  try {
    signer = checkPublicKey(spki);
  } catch (err) {
    return { check: 'check 3 (alg)', detail: `the key of x5c[0] is not accepted: ${(err as Error).message}` };
  }
  const alg = COSE_ALGORITHMS[attestation.alg];
  if (!alg || alg.kind !== signer.kind || (alg.curve && alg.curve !== signer.curve)) {
    return { check: 'check 3 (alg)', detail: `COSE alg ${attestation.alg} does not fit the ${signer.keyType} key of x5c[0]` };
  }
  const signed = Buffer.concat([attestation.authData, sha256(keyAuthorization)]);
  let valid = false;
  try {
    valid = nodeVerify(alg.hash, signed, signer.key, attestation.sig);
  } catch {
    valid = false;
  }
  return valid ? undefined : { check: 'check 3 (sig)', detail: 'the signature does not verify with the key of x5c[0] over authData and the key authorization' };
}

/** The rest of check 3: rpIdHash is this CA's and credId names the attested key. */
function bindingProblem(attestation: ParsedAttestation, challenge: AttestationChallenge): CheckFailure | undefined {
  if (!attestation.rpIdHash.equals(challenge.rpIdHash)) return { check: 'check 3 (rpIdHash)', detail: 'rpIdHash is not the SHA-256 of this CA\'s public host name' };
  if (!attestation.credId.equals(sha256(attestation.key.spki))) return { check: 'check 3 (credId)', detail: 'credId is not the SHA-256 of the attested key\'s SubjectPublicKeyInfo' };
  return undefined;
}

/** The "devid" format as a plug-in of the format registry. */
export const DEVID: AttestationFormat = {
  fmt: 'devid',
  parse(envelope): AttestationEvidence {
    const parsed = parseDevid(envelope);
    return {
      fmt: 'devid',
      chain: parsed.x5c,
      key: parsed.key,
      counter: parsed.signCount,
      firmware: parsed.firmware,
      signatureProblem: (signerSpki, challenge) => signatureProblem(parsed, signerSpki, challenge.keyAuthorization),
      bindingProblem: (challenge) => bindingProblem(parsed, challenge),
    };
  },
};

/** extensions = { "fw": { "version": text, "digest": bytes } }; other extensions are refused. */
function firmwareOf(extensions: Map<unknown, unknown> | undefined): FirmwareReport | null {
  if (!extensions) return null;
  const fail = () => new AttestationError('check 5 (firmware)', 'extensions must be {"fw": {"version": text (1-64), "digest": bytes (32-64)}}');
  if (extensions.size !== 1) throw fail();
  const fw = extensions.get('fw');
  if (!(fw instanceof Map) || fw.size !== 2) throw fail();
  const version = fw.get('version');
  const digest = fw.get('digest');
  if (typeof version !== 'string' || version.length < 1 || version.length > 64 || /[\u0000-\u001f\u007f]|\p{Cs}/u.test(version)) throw fail();
  if (!(digest instanceof Uint8Array) || digest.length < 32 || digest.length > 64) throw fail();
  return { version, digest: Buffer.from(digest).toString('hex') };
}
