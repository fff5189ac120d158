/** Why an HSM operation failed, in words an operator can act on. */
export type HsmErrorCode =
  | 'module-not-found'
  | 'token-not-found'
  | 'pin-incorrect'
  | 'pin-missing'
  | 'key-missing'
  | 'duplicate-label'
  | 'unsupported'
  | 'unavailable'
  | 'device-error';

export class HsmError extends Error {
  override readonly name = 'HsmError';
  constructor(
    readonly code: HsmErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The CKR_ name of a pkcs11js error, or undefined for anything else. */
export function ckrName(err: unknown): string | undefined {
  const message = err instanceof Error ? err.message : '';
  return /^CKR_[A-Z_]+/.exec(message)?.[0];
}

/** The session or login is gone (a network HSM blip, a token pulled and put back): open new sessions and log in again. */
const SESSION_LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_USER_NOT_LOGGED_IN', 'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT', 'CKR_TOKEN_NOT_RECOGNIZED', 'CKR_DEVICE_ERROR', 'CKR_CRYPTOKI_NOT_INITIALIZED',
]);

/** The object handle is stale (the token's objects were reloaded): find the key again by CKA_ID. */
const HANDLE_STALE = new Set(['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']);

export function isSessionLost(err: unknown): boolean {
  return SESSION_LOST.has(ckrName(err) ?? '');
}

export function isHandleStale(err: unknown): boolean {
  return HANDLE_STALE.has(ckrName(err) ?? '');
}

/** The HSM did not answer: callers answer 503 and try again later. */
export function isHsmUnavailable(err: unknown): boolean {
  return err instanceof HsmError && err.code === 'unavailable';
}
