import { webcrypto } from 'node:crypto';
import { curveInfo } from './curves.ts';
import type { KeyHandle, KeyProvider } from './provider.ts';

/**
 * A WebCrypto CryptoKey that stands for a key in the token. @peculiar/x509
 * only passes it back to `crypto.subtle.sign`, which routes it to the HSM.
 */
export class HsmCryptoKey implements CryptoKey {
  readonly type = 'private';
  readonly extractable = false;
  readonly usages: KeyUsage[] = ['sign'];
  readonly algorithm: EcKeyAlgorithm;

  constructor(readonly handle: KeyHandle) {
    this.algorithm = { name: 'ECDSA', namedCurve: handle.curve };
  }
}

/** Signature algorithm paired with the key's curve (ecdsa-with-SHA256/384). */
export function signingAlgorithm(handle: KeyHandle): EcdsaParams {
  return { name: 'ECDSA', hash: curveInfo(handle.curve).hash };
}

/**
 * Node's WebCrypto with `subtle.sign` sent to the key provider for HsmCryptoKey
 * keys; everything else (digests for SKI, verification) stays in Node.
 */
export function hsmCrypto(provider: KeyProvider): Crypto {
  const subtle = new Proxy(webcrypto.subtle, {
    get(target, property) {
      if (property === 'sign') {
        return async (algorithm: EcdsaParams, key: CryptoKey, data: BufferSource) => {
          if (!(key instanceof HsmCryptoKey)) return target.sign(algorithm, key, data);
          const expected = curveInfo(key.handle.curve).hash;
          const hash = typeof algorithm.hash === 'string' ? algorithm.hash : algorithm.hash?.name;
          if (hash !== expected) throw new Error(`key ${key.handle.label} signs with ${expected}, not ${hash}`);
          const bytes = ArrayBuffer.isView(data)
            ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
            : new Uint8Array(data);
          const signature = await provider.sign(key.handle, bytes);
          return signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    subtle,
    getRandomValues: webcrypto.getRandomValues.bind(webcrypto),
    randomUUID: webcrypto.randomUUID.bind(webcrypto),
  } as unknown as Crypto;
}
