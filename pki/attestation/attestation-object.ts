import { Decoder } from 'cbor-x';

/** Why an attestation was refused: the check of docs/device-makers/protocol.md that failed, in words the device's maker can act on. */
export class AttestationError extends Error {
  override readonly name = 'AttestationError';
  constructor(
    readonly check: string,
    readonly detail: string,
  ) {
    super(`${check}: ${detail}`);
  }
}

/**
 * An attestation object as every format of draft-ietf-acme-device-attest
 * sends it (the WebAuthn layout): `{"fmt", "attStmt", "authData"}`, where
 * draft-09 lets `authData` be omitted. The format named by `fmt` reads
 * attStmt and authData (pki/attestation/format.ts).
 */
export interface AttestationEnvelope {
  fmt: string;
  attStmt: Map<unknown, unknown>;
  /** Absent when the device omitted it; each format says whether it needs it. */
  authData: Buffer | undefined;
}

/** The statement of fmt "devid" (docs/device-makers/protocol.md: the WebAuthn `packed` layout). */
export interface AttestationObject {
  alg: number;
  sig: Buffer;
  /** x5c[0] first: the certificate of the key that signed. */
  x5c: Buffer[];
  authData: Buffer;
}

export interface AuthenticatorData {
  rpIdHash: Buffer;
  flags: number;
  signCount: number;
  credId: Buffer;
  /** The COSE_Key of the new operational key, as decoded (integer keys). */
  credentialPublicKey: Map<number, unknown>;
  extensions: Map<unknown, unknown> | undefined;
}

/** Limits on what a device may send: a real attestation object is 1-3 KB. */
export const MAX_ATTESTATION_OBJECT = 16 * 1024;
const MAX_CHAIN = 4;
const MAX_CERTIFICATE = 4096;

const FLAG_UP = 0x01;
const FLAG_AT = 0x40;
const FLAG_ED = 0x80;

/** CBOR maps as Map (no prototype to pollute, integer COSE labels kept), no record extensions. */
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

const shape = (detail: string) => new AttestationError('attestation object', detail);

function decodeAll(bytes: Buffer): unknown[] {
  try {
    return decoder.decodeMultiple(bytes) as unknown[];
  } catch {
    throw shape('not well-formed CBOR');
  }
}

const isBytes = (value: unknown): value is Buffer => value instanceof Uint8Array;

/** attObj = { "fmt": text, "attStmt": map, ? "authData": bytes }: exactly these members, of these types; the format reads the rest. */
export function parseEnvelope(bytes: Buffer): AttestationEnvelope {
  if (bytes.length === 0 || bytes.length > MAX_ATTESTATION_OBJECT) throw shape(`must be 1 to ${MAX_ATTESTATION_OBJECT} bytes`);
  const items = decodeAll(bytes);
  const [top] = items;
  if (items.length !== 1 || !(top instanceof Map)) throw shape('must be one CBOR map');
  const fmt = top.get('fmt');
  const hasAuthData = top.has('authData');
  if (top.size !== (hasAuthData ? 3 : 2) || typeof fmt !== 'string' || fmt.length === 0 || fmt.length > 64) throw shape('must be {"fmt", "attStmt", "authData"} (authData may be omitted)');
  const statement = top.get('attStmt');
  const authData = top.get('authData');
  if (!(statement instanceof Map) || (hasAuthData && !isBytes(authData))) throw shape('attStmt must be a map and authData a byte string');
  return { fmt, attStmt: statement, authData: hasAuthData ? Buffer.from(authData as Uint8Array) : undefined };
}

/** attStmt of fmt "devid" = { "alg", "sig", "x5c" }: exactly these members, of these types. */
export function parseDevidStatement(envelope: AttestationEnvelope): AttestationObject {
  const statement = envelope.attStmt;
  if (!envelope.authData) throw shape('fmt devid needs authData');
  if (statement.size !== 3) throw shape('attStmt must be {"alg", "sig", "x5c"}');
  const alg = statement.get('alg');
  const sig = statement.get('sig');
  const x5c = statement.get('x5c');
  if (!Number.isInteger(alg) || !isBytes(sig) || sig.length > 1024) throw shape('attStmt.alg must be an integer and attStmt.sig a byte string');
  return { alg: alg as number, sig: Buffer.from(sig), x5c: parseX5c(x5c), authData: envelope.authData };
}

/** attStmt.x5c: 1 to 4 certificates (DER, leaf first) of at most 4 KB each, as every format sends its chain. */
export function parseX5c(x5c: unknown): Buffer[] {
  if (!Array.isArray(x5c) || x5c.length < 1 || x5c.length > MAX_CHAIN || !x5c.every((c) => isBytes(c) && c.length > 0 && c.length <= MAX_CERTIFICATE)) {
    throw shape(`attStmt.x5c must hold 1 to ${MAX_CHAIN} certificates of at most ${MAX_CERTIFICATE} bytes`);
  }
  return x5c.map((c: Uint8Array) => Buffer.from(c));
}

/**
 * authData = rpIdHash (32) | flags (1) | signCount (4) | aaguid (16) |
 * credIdLen (2) | credId | COSE_Key | extensions (CBOR map, when flag 0x80).
 */
export function parseAuthenticatorData(authData: Buffer): AuthenticatorData {
  const fail = (detail: string) => new AttestationError('authData', detail);
  if (authData.length < 37 + 16 + 2) throw fail('is shorter than its fixed fields');
  const flags = authData[32]!;
  if ((flags & (FLAG_UP | FLAG_AT)) !== (FLAG_UP | FLAG_AT) || (flags & ~(FLAG_UP | FLAG_AT | FLAG_ED)) !== 0) {
    throw fail(`flags must be 0x41, or 0xc1 with extensions (got 0x${flags.toString(16)})`);
  }
  if (!authData.subarray(37, 53).equals(Buffer.alloc(16))) throw fail('aaguid must be zeros');
  const credIdLength = authData.readUInt16BE(53);
  if (credIdLength !== 32 || authData.length < 55 + credIdLength + 1) throw fail('credId must be 32 bytes (a SHA-256) followed by the COSE key');
  const credId = authData.subarray(55, 55 + credIdLength);
  const items = (() => {
    try {
      return decoder.decodeMultiple(authData.subarray(55 + credIdLength)) as unknown[];
    } catch {
      throw fail('the credential public key is not well-formed CBOR');
    }
  })();
  const [coseKey, extensions] = items;
  const hasExtensions = (flags & FLAG_ED) !== 0;
  if (items.length !== (hasExtensions ? 2 : 1)) throw fail(hasExtensions ? 'flag 0x80 needs one extensions map after the key' : 'unexpected data after the COSE key');
  if (!(coseKey instanceof Map)) throw fail('the credential public key must be a COSE_Key map');
  if (hasExtensions && !(extensions instanceof Map)) throw fail('extensions must be a CBOR map');
  return {
    rpIdHash: authData.subarray(0, 32),
    flags,
    signCount: authData.readUInt32BE(33),
    credId: Buffer.from(credId),
    credentialPublicKey: coseKey,
    extensions: hasExtensions ? (extensions as Map<unknown, unknown>) : undefined,
  };
}
