import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { curveFromParams, curveInfo, digestFor, type Curve } from './curves.ts';
import { HsmError, ckrName } from './errors.ts';
import { acquireModule, releaseModule, withRetry } from './pkcs11-module.ts';
import type { KeyHandle, KeyProvider } from './provider.ts';
import { SessionPool } from './session-pool.ts';

export interface Pkcs11Options {
  modulePath: string;
  tokenLabel: string;
  pin: string;
  /** Sessions in the signing pool. */
  sessions?: number;
}

interface Pkcs11KeyHandle extends KeyHandle {
  readonly privateHandle: Buffer;
}

/** Attributes read back from the token, to prove a key cannot leave it. */
export interface PrivateKeyAttributes {
  token: boolean;
  private: boolean;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

const SESSION_FLAGS = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;

/** Finds the initialised token with this label among the module's slots. */
export async function findTokenSlot(lib: pkcs11js.PKCS11, label: string): Promise<Buffer | undefined> {
  for (const slot of lib.C_GetSlotList(true)) {
    const info = await withRetry(() => lib.C_GetTokenInfo(slot));
    if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0 && tokenLabel(info.label) === label) return slot;
  }
  return undefined;
}

/** A token label without its padding (blanks per PKCS#11, NULs from some writers). */
function tokenLabel(raw: string): string {
  return raw.replace(/[\s\0]+$/, '');
}

/** Key provider over a PKCS#11 token through pkcs11js, signing with synchronous C_Sign on a session pool. */
export class Pkcs11KeyProvider implements KeyProvider {
  private closed = false;

  private constructor(
    private readonly lib: pkcs11js.PKCS11,
    private readonly modulePath: string,
    private readonly pool: SessionPool,
  ) {}

  static async open(options: Pkcs11Options): Promise<Pkcs11KeyProvider> {
    const lib = acquireModule(options.modulePath);
    const sessions: Buffer[] = [];
    try {
      const slot = await findTokenSlot(lib, options.tokenLabel);
      if (!slot) {
        throw new HsmError('token-not-found', `no initialised PKCS#11 token labelled "${options.tokenLabel}" in ${options.modulePath}: run "devid-ca init", or set DEVID_PKCS11_TOKEN`);
      }
      for (let i = 0; i < (options.sessions ?? 4); i += 1) {
        sessions.push(await withRetry(() => lib.C_OpenSession(slot, SESSION_FLAGS)));
      }
      login(lib, sessions[0]!, options.pin, options.tokenLabel);
      return new Pkcs11KeyProvider(lib, options.modulePath, new SessionPool(sessions));
    } catch (err) {
      for (const session of sessions) lib.C_CloseSession(session);
      releaseModule(options.modulePath);
      throw err;
    }
  }

  async createKey(label: string, curve: Curve): Promise<KeyHandle> {
    if (await this.findKey(label)) {
      throw new HsmError('duplicate-label', `the token already holds a key labelled "${label}"`);
    }
    const info = curveInfo(curve);
    const id = randomBytes(16);
    const common = [
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
    ];
    const publicTemplate = [
      ...common,
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_EC_PARAMS, value: info.ecParams },
    ];
    const privateTemplate = [
      ...common,
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
    ];
    await this.pool.use((session) =>
      this.lib.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, publicTemplate, privateTemplate),
    );
    const key = await this.findKey(label);
    if (!key) throw new HsmError('key-missing', `key "${label}" was generated but cannot be found again`);
    return key;
  }

  async findKey(label: string): Promise<KeyHandle | undefined> {
    return this.pool.use((session) => {
      const privates = this.find(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_LABEL, value: label },
      ]);
      if (privates.length === 0) return undefined;
      if (privates.length > 1) {
        throw new HsmError('duplicate-label', `the token holds ${privates.length} private keys labelled "${label}"; remove the extra ones before starting`);
      }
      const privateHandle = privates[0]!;
      const [idAttr, paramsAttr] = this.lib.C_GetAttributeValue(session, privateHandle, [
        { type: pkcs11js.CKA_ID },
        { type: pkcs11js.CKA_EC_PARAMS },
      ]);
      const id = idAttr!.value as Buffer;
      const info = curveFromParams(paramsAttr!.value as Buffer);
      if (!info) throw new HsmError('unsupported', `key "${label}" is not on P-256 or P-384`);
      const [publicHandle] = this.find(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_ID, value: id },
      ]);
      if (!publicHandle) throw new HsmError('key-missing', `key "${label}" has no public key object with the same CKA_ID`);
      const [point] = this.lib.C_GetAttributeValue(session, publicHandle, [{ type: pkcs11js.CKA_EC_POINT }]);
      const handle: Pkcs11KeyHandle = {
        label,
        id,
        curve: info.curve,
        publicKey: publicKeyFromPoint(info.curve, point!.value as Buffer),
        privateHandle,
      };
      return handle;
    });
  }

  async sign(key: KeyHandle, data: Uint8Array): Promise<Buffer> {
    const info = curveInfo(key.curve);
    const digest = digestFor(info, data);
    const privateHandle = (key as Pkcs11KeyHandle).privateHandle;
    if (!privateHandle) throw new HsmError('key-missing', `key "${key.label}" does not belong to this token`);
    return this.pool.use((session) => {
      this.lib.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, privateHandle);
      return this.lib.C_Sign(session, digest, Buffer.alloc(info.size * 2));
    });
  }

  async destroyKey(key: KeyHandle): Promise<void> {
    await this.pool.use((session) => {
      for (const handle of this.find(session, [{ type: pkcs11js.CKA_ID, value: key.id }])) this.lib.C_DestroyObject(session, handle);
    });
  }

  async attributes(key: KeyHandle): Promise<PrivateKeyAttributes> {
    const wanted = {
      token: pkcs11js.CKA_TOKEN,
      private: pkcs11js.CKA_PRIVATE,
      sensitive: pkcs11js.CKA_SENSITIVE,
      extractable: pkcs11js.CKA_EXTRACTABLE,
      alwaysSensitive: pkcs11js.CKA_ALWAYS_SENSITIVE,
      neverExtractable: pkcs11js.CKA_NEVER_EXTRACTABLE,
    };
    const values = await this.pool.use((session) =>
      this.lib.C_GetAttributeValue(
        session,
        (key as Pkcs11KeyHandle).privateHandle,
        Object.values(wanted).map((type) => ({ type })),
      ),
    );
    const names = Object.keys(wanted) as Array<keyof PrivateKeyAttributes>;
    const flag = (value: unknown) => (Buffer.isBuffer(value) ? value[0] === 1 : value === true);
    return Object.fromEntries(names.map((name, i) => [name, flag(values[i]!.value)])) as unknown as PrivateKeyAttributes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const session of this.pool.sessions) {
      try {
        this.lib.C_CloseSession(session);
      } catch {
        // The session may already be gone with the token; nothing to release.
      }
    }
    releaseModule(this.modulePath);
  }

  private find(session: Buffer, template: pkcs11js.Template): Buffer[] {
    this.lib.C_FindObjectsInit(session, template);
    try {
      return this.lib.C_FindObjects(session, 16);
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
  }
}

function login(lib: pkcs11js.PKCS11, session: Buffer, pin: string, tokenLabel: string): void {
  try {
    lib.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    const ckr = ckrName(err);
    if (ckr === 'CKR_USER_ALREADY_LOGGED_IN') return;
    if (ckr === 'CKR_PIN_INCORRECT' || ckr === 'CKR_PIN_INVALID' || ckr === 'CKR_PIN_LEN_RANGE') {
      throw new HsmError('pin-incorrect', `the PIN for token "${tokenLabel}" was refused (${ckr}): check DEVID_PKCS11_PIN or DEVID_PKCS11_PIN_FILE`);
    }
    if (ckr === 'CKR_PIN_LOCKED') throw new HsmError('pin-incorrect', `the user PIN of token "${tokenLabel}" is locked`);
    throw err;
  }
}

/** CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (some tokens omit the wrapper). */
function publicKeyFromPoint(curve: Curve, value: Buffer): KeyObject {
  const size = curveInfo(curve).size;
  const point = value[0] === 0x04 && value[1] === value.length - 2 ? value.subarray(2) : value;
  if (point.length !== 1 + 2 * size || point[0] !== 0x04) {
    throw new HsmError('unsupported', 'the token returned an EC point that is not uncompressed');
  }
  const x = point.subarray(1, 1 + size).toString('base64url');
  const y = point.subarray(1 + size).toString('base64url');
  return createPublicKey({ key: { kty: 'EC', crv: curve, x, y }, format: 'jwk' });
}
