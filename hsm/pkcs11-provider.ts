import { createPublicKey, type KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pkcs11js from 'pkcs11js';
import { curveFromParams, curveInfo, digestFor, type Curve } from './curves.ts';
import { signingKeyTemplates } from './key-templates.ts';
import { CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, ed25519PublicKey, ed25519Templates, type Ed25519Handle, type Ed25519Keys } from './ed25519.ts';
import { HsmError, ckrName, isHandleStale, isSessionLost } from './errors.ts';
import { acquireModule, reinitializeModule, releaseModule, withRetry } from './pkcs11-module.ts';
import type { KeyHandle, KeyProvider } from './provider.ts';
import { SessionPool } from './session-pool.ts';

export interface Pkcs11Options {
  modulePath: string;
  tokenLabel: string;
  pin: string;
  /** Sessions in the signing pool. */
  sessions?: number;
}

/** Attributes read back from the token, to prove a key cannot leave it or be used but to sign. */
export interface PrivateKeyAttributes {
  token: boolean;
  private: boolean;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
  sign: boolean;
  decrypt: boolean;
  unwrap: boolean;
  derive: boolean;
}

const SESSION_FLAGS = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
/** Back-off between attempts to reopen sessions after the token lost them. */
const RECOVERY_DELAYS_MS = [0, 100, 400, 1600];

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

/**
 * Key provider over a PKCS#11 token through pkcs11js, signing with synchronous
 * C_Sign on a session pool (docs/developers/hsm.md; measured ~2.4x cheaper than the async form).
 * Keys are found by CKA_ID and their object handles cached. Two kinds of
 * trouble are repaired before the operation is tried once more: lost sessions
 * or login (a network HSM blip), and stale object handles (the token reloaded
 * its objects, after which SoftHSM shows them only to new sessions). Both
 * reopen the pool's sessions and log in again, with back-off.
 */
export class Pkcs11KeyProvider implements KeyProvider, Ed25519Keys {
  private closed = false;
  private recovering: Promise<void> | undefined;
  /** CKA_ID (hex) to private-key object handle. */
  private readonly handles = new Map<string, Buffer>();

  private constructor(
    private readonly lib: pkcs11js.PKCS11,
    private readonly options: Pkcs11Options,
    private readonly pool: SessionPool,
    private slot: Buffer | undefined,
  ) {}

  static async open(options: Pkcs11Options): Promise<Pkcs11KeyProvider> {
    const lib = acquireModule(options.modulePath);
    try {
      const slot = await tokenSlot(lib, options);
      return new Pkcs11KeyProvider(lib, options, new SessionPool(await openSessions(lib, options, slot)), slot);
    } catch (err) {
      releaseModule(options.modulePath);
      throw err;
    }
  }

  async createKey(label: string, curve: Curve): Promise<KeyHandle> {
    if (await this.findKey(label)) {
      throw new HsmError('duplicate-label', `the token already holds a key labelled "${label}"`);
    }
    const { id, publicTemplate, privateTemplate } = signingKeyTemplates(label, pkcs11js.CKK_EC, curveInfo(curve).ecParams);
    await this.run((session) =>
      this.lib.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, publicTemplate, privateTemplate),
    );
    const key = await this.findKeyById(id);
    if (!key) throw new HsmError('key-missing', `key "${label}" was generated but cannot be found again`);
    return key;
  }

  async findKey(label: string): Promise<KeyHandle | undefined> {
    return this.findOne([{ type: pkcs11js.CKA_LABEL, value: label }], `labelled "${label}"`);
  }

  async findKeyById(id: Buffer): Promise<KeyHandle | undefined> {
    return this.findOne([{ type: pkcs11js.CKA_ID, value: id }], `with CKA_ID ${id.toString('hex')}`);
  }

  async sign(key: KeyHandle, data: Uint8Array): Promise<Buffer> {
    const info = curveInfo(key.curve);
    const digest = digestFor(info, data);
    const signOnce = () => this.run((session) => {
      this.lib.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, this.privateHandle(session, key));
      return this.lib.C_Sign(session, digest, Buffer.alloc(info.size * 2));
    });
    const stale = (err: unknown) => isHandleStale(err) || (err instanceof HsmError && err.code === 'key-missing');
    try {
      return await signOnce();
    } catch (err) {
      if (!stale(err)) throw err;
      // The token reloaded its objects: find the key again by CKA_ID on fresh sessions, then with the module reloaded.
      for (const reload of [false, true]) {
        this.handles.delete(key.id.toString('hex'));
        await this.recover(ckrName(err) ?? 'key not found', reload);
        try {
          return await signOnce();
        } catch (again) {
          if (!stale(again) || reload) throw again;
        }
      }
      throw err;
    }
  }

  async ed25519Unsupported(): Promise<string | undefined> {
    const slot = this.slot ?? (await tokenSlot(this.lib, this.options));
    const mechanisms = this.lib.C_GetMechanismList(slot);
    const missing = [[CKM_EC_EDWARDS_KEY_PAIR_GEN, 'CKM_EC_EDWARDS_KEY_PAIR_GEN'], [CKM_EDDSA, 'CKM_EDDSA']].filter(([m]) => !mechanisms.includes(m as number)).map(([, name]) => name);
    return missing.length === 0 ? undefined : `the token "${this.options.tokenLabel}" does not offer ${missing.join(' and ')} (Ed25519)`;
  }

  async createEd25519Key(label: string): Promise<Ed25519Handle> {
    if (await this.findEd25519Key(label)) throw new HsmError('duplicate-label', `the token already holds a key labelled "${label}"`);
    const { id, publicTemplate, privateTemplate } = ed25519Templates(label);
    await this.run((session) => this.lib.C_GenerateKeyPair(session, { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN }, publicTemplate, privateTemplate));
    const key = await this.findEd25519Key(label);
    if (!key || !key.id.equals(id)) throw new HsmError('key-missing', `key "${label}" was generated but cannot be found again`);
    return key;
  }

  async findEd25519Key(label: string): Promise<Ed25519Handle | undefined> {
    return this.run((session) => {
      const byLabel = [{ type: pkcs11js.CKA_LABEL, value: label }, { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS }];
      const privates = this.find(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, ...byLabel]);
      if (privates.length === 0) return undefined;
      if (privates.length > 1) throw new HsmError('duplicate-label', `the token holds ${privates.length} Ed25519 keys labelled "${label}"; remove the extra ones before starting`);
      const [idAttr] = this.lib.C_GetAttributeValue(session, privates[0]!, [{ type: pkcs11js.CKA_ID }]);
      const id = idAttr!.value as Buffer;
      const [publicHandle] = this.find(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY }, { type: pkcs11js.CKA_ID, value: id }]);
      if (!publicHandle) throw new HsmError('key-missing', `key "${label}" has no public key object with the same CKA_ID`);
      const [point] = this.lib.C_GetAttributeValue(session, publicHandle, [{ type: pkcs11js.CKA_EC_POINT }]);
      const { publicKey, raw } = ed25519PublicKey(label, point!.value as Buffer);
      this.handles.set(id.toString('hex'), privates[0]!);
      return { label, id, publicKey, rawPublicKey: raw };
    });
  }

  async signEd25519(key: Ed25519Handle, message: Uint8Array): Promise<Buffer> {
    const signOnce = () => this.run((session) => {
      this.lib.C_SignInit(session, { mechanism: CKM_EDDSA }, this.privateHandle(session, key));
      return this.lib.C_Sign(session, Buffer.from(message), Buffer.alloc(64));
    });
    try {
      return await signOnce();
    } catch (err) {
      if (!isHandleStale(err) && !(err instanceof HsmError && err.code === 'key-missing')) throw err;
      // The token reloaded its objects: find the key again by CKA_ID, on fresh sessions.
      this.handles.delete(key.id.toString('hex'));
      await this.recover(ckrName(err) ?? 'key not found');
      return signOnce();
    }
  }

  async destroyKey(key: KeyHandle): Promise<void> {
    this.handles.delete(key.id.toString('hex'));
    await this.run((session) => {
      for (const handle of this.find(session, [{ type: pkcs11js.CKA_ID, value: key.id }])) this.lib.C_DestroyObject(session, handle);
    });
  }

  async ping(): Promise<void> {
    await this.run((session) => this.lib.C_GetSessionInfo(session));
  }

  async attributes(key: KeyHandle): Promise<PrivateKeyAttributes> {
    const wanted = {
      token: pkcs11js.CKA_TOKEN,
      private: pkcs11js.CKA_PRIVATE,
      sensitive: pkcs11js.CKA_SENSITIVE,
      extractable: pkcs11js.CKA_EXTRACTABLE,
      alwaysSensitive: pkcs11js.CKA_ALWAYS_SENSITIVE,
      neverExtractable: pkcs11js.CKA_NEVER_EXTRACTABLE,
      sign: pkcs11js.CKA_SIGN,
      decrypt: pkcs11js.CKA_DECRYPT,
      unwrap: pkcs11js.CKA_UNWRAP,
      derive: pkcs11js.CKA_DERIVE,
    };
    const values = await this.run((session) =>
      this.lib.C_GetAttributeValue(session, this.privateHandle(session, key), Object.values(wanted).map((type) => ({ type }))),
    );
    const names = Object.keys(wanted) as Array<keyof PrivateKeyAttributes>;
    const flag = (value: unknown) => (Buffer.isBuffer(value) ? value[0] === 1 : value === true);
    return Object.fromEntries(names.map((name, i) => [name, flag(values[i]!.value)])) as unknown as PrivateKeyAttributes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSessions(this.lib, this.pool.sessions);
    releaseModule(this.options.modulePath);
  }

  /** Runs work on a pooled session; when the token lost the session, reopens all sessions and tries once more. */
  private async run<T>(work: (session: Buffer) => T): Promise<T> {
    try {
      return await this.pool.use(work);
    } catch (err) {
      if (!isSessionLost(err)) throw err;
      await this.recover(ckrName(err)!);
      try {
        return await this.pool.use(work);
      } catch (again) {
        if (isSessionLost(again)) throw unavailable(this.options.tokenLabel, ckrName(again)!);
        throw again;
      }
    }
  }

  /** One recovery at a time: every caller that saw the loss waits for the same one. */
  private recover(cause: string, reload = false): Promise<void> {
    this.recovering ??= this.reopen(cause, reload).finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  /**
   * New sessions first, old ones closed after: while any session of ours is
   * open the login stays (a token that reloaded its objects may refuse a new
   * C_Login), and new sessions see the reloaded objects where old ones do not.
   */
  private async reopen(cause: string, reload: boolean): Promise<void> {
    let last = cause;
    for (const [attempt, delay] of RECOVERY_DELAYS_MS.entries()) {
      await sleep(delay);
      try {
        // A token that lost its state for good (SoftHSM after its files vanished under it) comes back only
        // through a fresh C_Initialize: the module is reloaded in the process when asked, or after a failed attempt.
        if (reload || attempt > 0) {
          reinitializeModule(this.options.modulePath);
          this.slot = undefined;
        }
        const sessions = await openSessions(this.lib, this.options, this.slot);
        const old = this.pool.sessions;
        this.handles.clear();
        this.pool.replace(sessions);
        closeSessions(this.lib, old);
        return;
      } catch (err) {
        if (err instanceof HsmError && err.code === 'pin-incorrect') throw err;
        last = ckrName(err) ?? (err instanceof Error ? err.message : String(err));
      }
    }
    throw unavailable(this.options.tokenLabel, last);
  }

  private async findOne(criterion: pkcs11js.Template, what: string): Promise<KeyHandle | undefined> {
    return this.run((session) => {
      const privates = this.find(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, ...criterion]);
      if (privates.length === 0) return undefined;
      if (privates.length > 1) {
        throw new HsmError('duplicate-label', `the token holds ${privates.length} private keys ${what}; remove the extra ones before starting`);
      }
      const privateHandle = privates[0]!;
      const [idAttr, labelAttr, paramsAttr] = this.lib.C_GetAttributeValue(session, privateHandle, [
        { type: pkcs11js.CKA_ID },
        { type: pkcs11js.CKA_LABEL },
        { type: pkcs11js.CKA_EC_PARAMS },
      ]);
      const id = idAttr!.value as Buffer;
      const label = (labelAttr!.value as Buffer).toString('utf8');
      const info = curveFromParams(paramsAttr!.value as Buffer);
      if (!info) throw new HsmError('unsupported', `key "${label}" is not on P-256 or P-384`);
      const [publicHandle] = this.find(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_ID, value: id },
      ]);
      if (!publicHandle) throw new HsmError('key-missing', `key "${label}" has no public key object with the same CKA_ID`);
      const [point] = this.lib.C_GetAttributeValue(session, publicHandle, [{ type: pkcs11js.CKA_EC_POINT }]);
      this.handles.set(id.toString('hex'), privateHandle);
      const handle: KeyHandle = { label, id, curve: info.curve, publicKey: publicKeyFromPoint(info.curve, point!.value as Buffer) };
      return handle;
    });
  }

  /** The cached private-key handle of a key, found by CKA_ID when not cached. */
  private privateHandle(session: Buffer, key: Pick<KeyHandle, 'id' | 'label'>): Buffer {
    const cached = this.handles.get(key.id.toString('hex'));
    if (cached) return cached;
    const [handle] = this.find(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_ID, value: key.id },
    ]);
    if (!handle) throw new HsmError('key-missing', `the token holds no key "${key.label}" (CKA_ID ${key.id.toString('hex')})`);
    this.handles.set(key.id.toString('hex'), handle);
    return handle;
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

function unavailable(tokenLabel: string, cause: string): HsmError {
  return new HsmError('unavailable', `the HSM token "${tokenLabel}" does not answer (${cause})`);
}

async function tokenSlot(lib: pkcs11js.PKCS11, options: Pkcs11Options): Promise<Buffer> {
  const slot = await findTokenSlot(lib, options.tokenLabel);
  if (!slot) {
    throw new HsmError('token-not-found', `no initialised PKCS#11 token labelled "${options.tokenLabel}" in ${options.modulePath}: run "devid-ca init", or set DEVID_PKCS11_TOKEN`);
  }
  return slot;
}

/** Opens the pool's sessions on the token and logs the user in (a login covers every session of the application). */
async function openSessions(lib: pkcs11js.PKCS11, options: Pkcs11Options, knownSlot?: Buffer): Promise<Buffer[]> {
  const sessions: Buffer[] = [];
  try {
    const slot = knownSlot ?? (await tokenSlot(lib, options));
    for (let i = 0; i < (options.sessions ?? 4); i += 1) {
      sessions.push(await withRetry(() => lib.C_OpenSession(slot, SESSION_FLAGS)));
    }
    login(lib, sessions[0]!, options.pin, options.tokenLabel);
    return sessions;
  } catch (err) {
    closeSessions(lib, sessions);
    throw err;
  }
}

function closeSessions(lib: pkcs11js.PKCS11, sessions: readonly Buffer[]): void {
  for (const session of sessions) {
    try {
      lib.C_CloseSession(session);
    } catch {
      // The session may already be gone with the token; nothing to release.
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
