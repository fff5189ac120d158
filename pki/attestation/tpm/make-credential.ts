import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';

/** TPM2B: a big-endian uint16 size, then the bytes. */
function tpm2b(bytes: Buffer): Buffer {
  const size = Buffer.alloc(2);
  size.writeUInt16BE(bytes.length);
  return Buffer.concat([size, bytes]);
}

/**
 * KDFa (TPM 2.0 Part 1, 11.4.10.2; SP 800-108 counter mode with HMAC):
 * `bits` of key from `key`, a label (written with its terminating zero) and
 * two contexts, SHA-256 as the EK's nameAlg.
 */
export function kdfa(key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const blocks: Buffer[] = [];
  const bitsField = Buffer.alloc(4);
  bitsField.writeUInt32BE(bits);
  for (let counter = 1; blocks.length * 32 * 8 < bits; counter++) {
    const counterField = Buffer.alloc(4);
    counterField.writeUInt32BE(counter);
    blocks.push(createHmac('sha256', key).update(counterField).update(label).update(Buffer.from([0])).update(contextU).update(contextV).update(bitsField).digest());
  }
  return Buffer.concat(blocks).subarray(0, bits / 8);
}

/** What TPM2_ActivateCredential takes: the credential blob (TPM2B_ID_OBJECT) and the seed encrypted to the EK (TPM2B_ENCRYPTED_SECRET). */
export interface MadeCredential {
  credentialBlob: Buffer;
  encryptedSecret: Buffer;
}

/**
 * TPM2_MakeCredential done by the CA (Part 1, 24; Part 3, 12.6), for an RSA
 * endorsement key of the TCG's default template (SHA-256 name, AES-128-CFB):
 * `credential` can be recovered only by TPM2_ActivateCredential in the TPM
 * that holds that EK, for the object whose Name is `objectName` loaded in
 * that same TPM. So whoever returns the credential holds the attestation
 * key in that TPM.
 */
export function makeCredential(ekPublicKey: KeyObject, objectName: Buffer, credential: Buffer): MadeCredential {
  if (ekPublicKey.asymmetricKeyType !== 'rsa') throw new Error('only RSA endorsement keys are supported');
  if (credential.length === 0 || credential.length > 32) throw new Error('a credential is 1 to 32 bytes');
  const seed = randomBytes(32);
  // Part 1, B.10.4: the seed is OAEP-encrypted to the EK with the label "IDENTITY" and its zero.
  const encryptedSeed = publicEncrypt({ key: ekPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('IDENTITY\0') }, seed);
  const symmetricKey = kdfa(seed, 'STORAGE', objectName, Buffer.alloc(0), 128);
  const cipher = createCipheriv('aes-128-cfb', symmetricKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(tpm2b(credential)), cipher.final()]);
  const hmacKey = kdfa(seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256);
  const outerHmac = createHmac('sha256', hmacKey).update(encIdentity).update(objectName).digest();
  return { credentialBlob: tpm2b(Buffer.concat([tpm2b(outerHmac), encIdentity])), encryptedSecret: tpm2b(encryptedSeed) };
}
