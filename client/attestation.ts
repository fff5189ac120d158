import { createHash, createPublicKey } from 'node:crypto';
import { Encoder } from 'cbor-x';
import type { FactoryKey } from './factory-key.ts';

const encoder = new Encoder({ useRecords: false, mapsAsObjects: false });
const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest();

/** The COSE_Key (RFC 9053) of a public key given as SPKI DER. */
export function coseKeyOf(spki: Buffer): Map<number, unknown> {
  const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  const b = (value: string | undefined) => Buffer.from(value!, 'base64url');
  if (jwk.kty === 'EC') return new Map<number, unknown>([[1, 2], [3, jwk.crv === 'P-384' ? -35 : -7], [-1, jwk.crv === 'P-384' ? 2 : 1], [-2, b(jwk.x)], [-3, b(jwk.y)]]);
  if (jwk.kty === 'OKP') return new Map<number, unknown>([[1, 1], [3, -8], [-1, 6], [-2, b(jwk.x)]]);
  return new Map<number, unknown>([[1, 3], [3, -257], [-1, b(jwk.n)], [-2, b(jwk.e)]]);
}

/** Everything the device puts in its attestation, and what a test may change to see it refused. */
export interface AttestationInput {
  factoryKey: Pick<FactoryKey, 'sign' | 'coseAlg'>;
  /** x5c: the attesting certificate (birth, or the current operational one for staged renewal) first. */
  x5c: Buffer[];
  keyAuthorization: string;
  /** The CA's public host name (rpIdHash is its SHA-256). */
  rpId: string;
  /** SPKI DER of the new operational key. */
  newKeySpki: Buffer;
  signCount: number;
  firmware?: { version: string; digest: Buffer };
  override?: { rpIdHash?: Buffer; credId?: Buffer; alg?: number; flags?: number; coseKey?: Map<number, unknown>; signature?: (sig: Buffer) => Buffer };
}

/**
 * attObj of docs/device-makers/protocol.md: WebAuthn's `packed` layout with fmt "devid",
 * signed by the factory key over authData | SHA-256(keyAuthorization).
 */
export async function buildAttestation(input: AttestationInput): Promise<Buffer> {
  const o = input.override ?? {};
  const cosePublic = o.coseKey ?? coseKeyOf(input.newKeySpki);
  const credId = o.credId ?? sha256(createPublicKey({ key: input.newKeySpki, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' }));
  const extensions = input.firmware ? encoder.encode(new Map([['fw', new Map<string, unknown>([['version', input.firmware.version], ['digest', input.firmware.digest]])]])) : Buffer.alloc(0);
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(input.signCount);
  const credIdLength = Buffer.alloc(2);
  credIdLength.writeUInt16BE(credId.length);
  const authData = Buffer.concat([
    o.rpIdHash ?? sha256(input.rpId), Buffer.from([o.flags ?? (input.firmware ? 0xc1 : 0x41)]), counter, Buffer.alloc(16),
    credIdLength, credId, encoder.encode(cosePublic), extensions,
  ]);
  let sig = await input.factoryKey.sign(Buffer.concat([authData, sha256(input.keyAuthorization)]));
  if (o.signature) sig = o.signature(sig);
  const statement = new Map<string, unknown>([['alg', o.alg ?? input.factoryKey.coseAlg], ['sig', sig], ['x5c', input.x5c]]);
  return encoder.encode(new Map<string, unknown>([['fmt', 'devid'], ['attStmt', statement], ['authData', authData]]));
}

/** What TPM2_Certify of the new key by the attestation key gave, and the key's public area. */
export interface TpmStatement {
  /** x5c: the attestation key's birth certificate first. */
  x5c: Buffer[];
  /** certifyInfo: a TPMS_ATTEST whose extraData is SHA-256(keyAuthorization). */
  certInfo: Buffer;
  /** The marshalled TPMT_SIGNATURE over certInfo by the attestation key. */
  sig: Buffer;
  /** The new key's TPMT_PUBLIC, without a size prefix. */
  pubArea: Buffer;
}

/**
 * attObj in the `tpm` format (WebAuthn 8.3 as draft-ietf-acme-device-attest
 * uses it; docs/device-makers/tpm.md): no authData, ver "2.0", alg ES256.
 */
export function buildTpmAttestation(statement: TpmStatement): Buffer {
  const attStmt = new Map<string, unknown>([
    ['ver', '2.0'], ['alg', -7], ['x5c', statement.x5c], ['sig', statement.sig], ['certInfo', statement.certInfo], ['pubArea', statement.pubArea],
  ]);
  return encoder.encode(new Map<string, unknown>([['fmt', 'tpm'], ['attStmt', attStmt]]));
}
