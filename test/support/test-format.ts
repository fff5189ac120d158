import { createHash, createPublicKey, verify } from 'node:crypto';
import { Encoder } from 'cbor-x';
import type { AttestationInput } from '../../client/attestation.ts';
import { AttestationError } from '../../pki/attestation/attestation-object.ts';
import type { AttestationEvidence, AttestationFormat } from '../../pki/attestation/format.ts';
import { checkPublicKey } from '../../pki/public-key.ts';

/**
 * A format that exists only in tests, to show that adding one is a plug-in
 * (pki/attestation/format.ts): attStmt = {"x5c", "key", "n", "sig"}, authData
 * = SHA-256 of the CA's host, sig by the key of x5c[0] over authData | key |
 * SHA-256(key authorization).
 */
export const TEST_FMT = 'test-sign';

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest();
const encoder = new Encoder({ useRecords: false, mapsAsObjects: false });

export const TEST_FORMAT: AttestationFormat = {
  fmt: TEST_FMT,
  parse(envelope): AttestationEvidence {
    const s = envelope.attStmt;
    const x5c = s.get('x5c');
    const key = s.get('key');
    const n = s.get('n');
    const sig = s.get('sig');
    const authData = envelope.authData ?? Buffer.alloc(0);
    if (!Array.isArray(x5c) || x5c.length !== 1 || !(key instanceof Uint8Array) || !Number.isInteger(n) || !(sig instanceof Uint8Array)) {
      throw new AttestationError('attestation object', `attStmt of ${TEST_FMT} must be {"x5c", "key", "n", "sig"}`);
    }
    const checked = checkPublicKey(Buffer.from(key));
    const signed = (keyAuthorization: string) => Buffer.concat([authData, checked.spki, sha256(keyAuthorization)]);
    return {
      fmt: TEST_FMT, chain: [Buffer.from(x5c[0] as Uint8Array)], key: checked, counter: n as number, firmware: null,
      signatureProblem: (spki, challenge) => verify('sha256', signed(challenge.keyAuthorization), createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig)
        ? undefined : { check: 'check 3 (sig)', detail: `the ${TEST_FMT} signature does not verify` },
      bindingProblem: (challenge) => authData.equals(challenge.rpIdHash) ? undefined : { check: 'check 3 (rpIdHash)', detail: 'authData is not this CA\'s' },
    };
  },
};

/** What a device of the test format sends, from what the reference device would put in a devid attestation. */
export async function buildTestAttestation(input: AttestationInput): Promise<Buffer> {
  const authData = sha256(input.rpId);
  const key = createPublicKey({ key: input.newKeySpki, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' });
  const sig = await input.factoryKey.sign(Buffer.concat([authData, key, sha256(input.keyAuthorization)]));
  const statement = new Map<string, unknown>([['x5c', input.x5c.slice(0, 1)], ['key', key], ['n', input.signCount], ['sig', sig]]);
  return encoder.encode(new Map<string, unknown>([['fmt', TEST_FMT], ['attStmt', statement], ['authData', authData]]));
}
