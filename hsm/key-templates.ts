import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';

/**
 * The templates of a signing-only key pair on the token (docs/reference/certificates.md):
 * persistent, labelled, never derivable, its private half sensitive and not
 * extractable, and neither half allowed to encrypt, decrypt, wrap or unwrap
 * (left unset, SoftHSM enables decrypt and unwrap). `keyType` and
 * `ecParams` name the curve (CKK_EC with a named curve, or Edwards).
 */
export function signingKeyTemplates(label: string, keyType: number, ecParams: Buffer): { id: Buffer; publicTemplate: pkcs11js.Template; privateTemplate: pkcs11js.Template } {
  const id = randomBytes(16);
  const common = [
    { type: pkcs11js.CKA_KEY_TYPE, value: keyType },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
    { type: pkcs11js.CKA_DERIVE, value: false },
  ];
  return {
    id,
    publicTemplate: [
      ...common,
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_EC_PARAMS, value: ecParams },
    ],
    privateTemplate: [
      ...common,
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
    ],
  };
}
