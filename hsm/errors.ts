/** Why an HSM operation failed, in words an operator can act on. */
export type HsmErrorCode =
  | 'module-not-found'
  | 'token-not-found'
  | 'pin-incorrect'
  | 'pin-missing'
  | 'key-missing'
  | 'duplicate-label'
  | 'unsupported'
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
