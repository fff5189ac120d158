import { generateKeyPairSync, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { curveInfo, type Curve } from './curves.ts';
import { HsmError } from './errors.ts';
import type { KeyHandle, KeyProvider } from './provider.ts';

/**
 * Software keys in memory, for fast unit tests of ca/ and registry/. It keeps
 * the provider contract (labels for people, CKA_ID finds the key, raw r|s
 * signatures); every HSM behaviour is still tested against SoftHSM2.
 */
export class MemoryKeyProvider implements KeyProvider {
  private readonly keys = new Map<string, { handle: KeyHandle; privateKey: KeyObject }>();

  async createKey(label: string, curve: Curve): Promise<KeyHandle> {
    if (await this.findKey(label)) throw new HsmError('duplicate-label', `the token already holds a key labelled "${label}"`);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    const handle: KeyHandle = { label, id: randomBytes(16), curve, publicKey };
    this.keys.set(handle.id.toString('hex'), { handle, privateKey });
    return handle;
  }

  async findKey(label: string): Promise<KeyHandle | undefined> {
    const found = [...this.keys.values()].filter((k) => k.handle.label === label);
    if (found.length > 1) throw new HsmError('duplicate-label', `the token holds ${found.length} private keys labelled "${label}"`);
    return found[0]?.handle;
  }

  async findKeyById(id: Buffer): Promise<KeyHandle | undefined> {
    return this.keys.get(id.toString('hex'))?.handle;
  }

  async sign(key: KeyHandle, data: Uint8Array): Promise<Buffer> {
    const entry = this.keys.get(key.id.toString('hex'));
    if (!entry) throw new HsmError('key-missing', `the token no longer holds key "${key.label}"`);
    return nodeSign(curveInfo(key.curve).nodeHash, data, { key: entry.privateKey, dsaEncoding: 'ieee-p1363' });
  }

  async destroyKey(key: KeyHandle): Promise<void> {
    this.keys.delete(key.id.toString('hex'));
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
