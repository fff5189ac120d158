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

/**
 * The serial of a CertID as the certificates table keeps it (lowercase hex
 * of the magnitude), or undefined unless its INTEGER contents are DER
 * (X.690 8.3.2: not empty, no redundant leading 0x00 or 0xFF) and not
 * negative (RFC 5280 4.1.2.2): such a request is malformed.
 */
export function serialOfInteger(contents: Uint8Array): string | undefined {
  if (contents.length === 0 || contents[0]! & 0x80) return undefined;
  if (contents[0] === 0 && contents.length > 1 && !(contents[1]! & 0x80)) return undefined;
  return Buffer.from(contents[0] === 0 && contents.length > 1 ? contents.subarray(1) : contents).toString('hex');
}

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

  constructor(readonly issuer: Issuer) {
    const key = subjectPublicKeyBits(issuer.record.publicKey);
    const digest = (hash: CertIdHash, data: Buffer) => createHash(hash).update(data).digest();
    this.hashes = {
      sha1: { nameHash: digest('sha1', issuer.subjectDer), keyHash: digest('sha1', key) },
      sha256: { nameHash: digest('sha256', issuer.subjectDer), keyHash: digest('sha256', key) },
    };
  }
}

/**
 * Finds the issuer a CertID names, by hash algorithm and the two issuer
 * hashes, among the CAs this responder answers for (never the root: the
 * status of what it signs is on its CRL).
 */
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
      if (integer[0] !== 0x02 || integer[1]! > 0x7f || integer[1] !== integer.length - 2) return undefined;
      // Not DER, or negative: the parser's path answers malformedRequest.
      const serial = serialOfInteger(integer.subarray(2));
      return serial === undefined ? undefined : { issuerId, serial };
    }
    return undefined;
  }

  find(hash: CertIdHash, nameHash: Uint8Array, keyHash: Uint8Array): IssuerCertIds | undefined {
    return this.byHashes.get(directoryKey(hash, nameHash, keyHash));
  }

  get(issuerId: number): IssuerCertIds | undefined {
    return this.byId.get(issuerId);
  }
}

function directoryKey(hash: CertIdHash, nameHash: Uint8Array, keyHash: Uint8Array): string {
  return `${hash}:${Buffer.from(nameHash).toString('hex')}:${Buffer.from(keyHash).toString('hex')}`;
}
