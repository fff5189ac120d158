import { createHash } from 'node:crypto';
import { element, octetString, oid, sequence } from '../ca/der.ts';
import { subjectPublicKeyBits } from '../ca/profiles.ts';
import type { Issuer } from '../ca/issuer.ts';

/** The hashes a CertID may use: SHA-1 (RFC 5019, OpenSSL's default) and SHA-256. */
export const CERT_ID_HASHES = ['sha1', 'sha256'] as const;
export type CertIdHash = (typeof CERT_ID_HASHES)[number];

const HASH_OIDS: Record<CertIdHash, string> = { sha1: '1.3.14.3.2.26', sha256: '2.16.840.1.101.3.4.2.1' };
const NULL = Buffer.from([0x05, 0x00]);

/** AlgorithmIdentifier with NULL parameters, as OpenSSL writes it in requests (responses echo it byte for byte). */
export const HASH_ALGORITHMS: Record<CertIdHash, Buffer> = {
  sha1: sequence(oid(HASH_OIDS.sha1), NULL),
  sha256: sequence(oid(HASH_OIDS.sha256), NULL),
};

export function hashOfOid(dotted: string): CertIdHash | undefined {
  return CERT_ID_HASHES.find((hash) => HASH_OIDS[hash] === dotted);
}

/** What a CertID says about its issuer, for one hash. */
export interface IssuerHashes {
  nameHash: Buffer;
  keyHash: Buffer;
}

/** How requests name an issuer: its name and key hashed with each CertID hash (RFC 6960 4.1.1). */
export class IssuerCertIds {
  readonly hashes: Record<CertIdHash, IssuerHashes>;
  /** ResponderID byKey: SHA-1 of the issuer's key (RFC 6960 4.2.1), which is also its SKI. */
  readonly responderKeyHash: Buffer;

  constructor(readonly issuer: Issuer) {
    const key = subjectPublicKeyBits(issuer.record.publicKey);
    const digest = (hash: CertIdHash, data: Buffer) => createHash(hash).update(data).digest();
    this.hashes = {
      sha1: { nameHash: digest('sha1', issuer.subjectDer), keyHash: digest('sha1', key) },
      sha256: { nameHash: digest('sha256', issuer.subjectDer), keyHash: digest('sha256', key) },
    };
    this.responderKeyHash = this.hashes.sha1.keyHash;
  }
}

/** Finds the issuer a CertID names, by hash algorithm and the two issuer hashes. */
export class IssuerDirectory {
  private readonly byHashes = new Map<string, IssuerCertIds>();
  private readonly byId = new Map<number, IssuerCertIds>();
  /** CertID contents up to the serial, as we write them, for each issuer and hash. */
  private readonly prefixes: Array<{ prefix: Buffer; issuerId: number }> = [];

  constructor(issuers: readonly Issuer[]) {
    for (const issuer of issuers) {
      const ids = new IssuerCertIds(issuer);
      this.byId.set(issuer.id, ids);
      for (const hash of CERT_ID_HASHES) {
        this.byHashes.set(directoryKey(hash, ids.hashes[hash].nameHash, ids.hashes[hash].keyHash), ids);
        this.prefixes.push({ prefix: Buffer.concat([HASH_ALGORITHMS[hash], octetString(ids.hashes[hash].nameHash), octetString(ids.hashes[hash].keyHash)]), issuerId: issuer.id });
      }
    }
  }

  /**
   * The issuer and serial of a CertID written byte for byte as ours are
   * (SEQUENCE { our hash algorithm, our issuer hashes, INTEGER }), without
   * a parser; undefined for anything else.
   */
  ownCertId(certId: Buffer): { issuerId: number; serial: string } | undefined {
    const { contents } = element(certId);
    for (const { prefix, issuerId } of this.prefixes) {
      if (contents.length <= prefix.length + 2 || !contents.subarray(0, prefix.length).equals(prefix)) continue;
      const integer = contents.subarray(prefix.length);
      if (integer[0] !== 0x02 || integer[1]! > 0x7f || integer[1] !== integer.length - 2 || integer[1] === 0) return undefined;
      const value = integer.subarray(2);
      if (value[0]! & 0x80) return undefined;
      return { issuerId, serial: (value[0] === 0 && value.length > 1 ? value.subarray(1) : value).toString('hex') };
    }
    return undefined;
  }

  find(hash: CertIdHash, nameHash: Uint8Array, keyHash: Uint8Array): IssuerCertIds | undefined {
    return this.byHashes.get(directoryKey(hash, nameHash, keyHash));
  }

  get(issuerId: number): IssuerCertIds | undefined {
    return this.byId.get(issuerId);
  }

  /** The CAs whose keys are in the token: the ones whose responses can be signed here. */
  onlineIssuerIds(): number[] {
    return [...this.byId.values()].filter((ids) => ids.issuer.online).map((ids) => ids.issuer.id);
  }
}

function directoryKey(hash: CertIdHash, nameHash: Uint8Array, keyHash: Uint8Array): string {
  return `${hash}:${Buffer.from(nameHash).toString('hex')}:${Buffer.from(keyHash).toString('hex')}`;
}
