import type { FirmwareReport } from '../../store/types.ts';
import type { CheckedKey } from '../public-key.ts';
import { AttestationError, parseEnvelope, type AttestationEnvelope } from './attestation-object.ts';

/** What an attestation is bound to: the challenge the device signed, and this CA. */
export interface AttestationChallenge {
  /** The text the device signs over (ACME: RFC 8555 8.1's token "." base64url(JWK thumbprint)). */
  keyAuthorization: string;
  /** SHA-256 of the CA's public host name (the relying party). */
  rpIdHash: Buffer;
  /**
   * The challenge token alone (ACME: device-attest-01's `token`): a format
   * whose statement an outside attestation service makes binds only this
   * (draft-ietf-acme-device-attest-09 section 5; `apple`).
   */
  token: string;
}

/**
 * What x5c[0] proves about the device. `birth-certificate` (devid, tpm):
 * x5c[0] is a certificate the device keeps, its birth certificate (or an
 * operational one). `manufacturer-serial` (apple, android-key): x5c[0] is
 * made fresh for each attested key by the manufacturer's attestation
 * service, which states the device serial; the device is known by
 * (manufacturer, serial), its claim binds no birth certificate.
 */
export type ProvenIdentity =
  | { kind: 'birth-certificate' }
  /** serial null: the statement names none its hardware vouches for, and `serialProblem` says why (refused as check 2). */
  | { kind: 'manufacturer-serial'; serial: string | null; serialProblem?: string };

/** A failed check: which one (docs/device-makers/protocol.md), and why, in words the device's maker can act on. */
export interface CheckFailure {
  check: string;
  detail: string;
}

/**
 * One attestation statement, parsed by its format: what it presents and
 * what it claims, and the format's own cryptographic checks. The
 * registration authority (registry/enrollment/) does the rest, the same for
 * every format: which certificate the chain's leaf is for this device
 * (check 1, 2), whether the key is new, the counter, the firmware policy.
 */
export interface AttestationEvidence {
  readonly fmt: string;
  /** The certificates of the signing key, leaf first: the leaf is the device's identity (a birth certificate, or under staged renewal an operational one). */
  readonly chain: readonly Buffer[];
  /** The new key the device attests, checked and canonical: the CSR must carry it. */
  readonly key: CheckedKey;
  /** A counter (or clock) that strictly increases per attestation; 0 when the device has none. */
  readonly counter: number;
  /** The firmware the device reports, or null. */
  readonly firmware: FirmwareReport | null;
  /**
   * Set when the statement, though it verifies, cannot be judged now and the
   * device should attest again later (a TPM clock not known to be safe):
   * refused without a clone signal, the counter left as it was.
   */
  readonly retryProblem?: CheckFailure;
  /** Absent: a birth certificate. */
  readonly identity?: ProvenIdentity;
  /**
   * Revocation that only the format knows of for its chain (Android's
   * attestation status list), asked after the chain validated; undefined
   * when nothing is revoked. May read a cache it refreshes.
   */
  revocationProblem?(now: Date): Promise<CheckFailure | undefined>;
  /**
   * What the format asks of a leaf another manufacturer issued (chain[0] when
   * it chained to a registered manufacturer, not to this CA): `tpm`'s AK
   * certificate rules of WebAuthn 8.3.1. Undefined when it holds.
   */
  outsideLeafProblem?(leaf: Buffer): CheckFailure | undefined;
  /** The signature by the key `signerSpki` (of chain[0]) over what the challenge binds; undefined when it verifies. */
  signatureProblem(signerSpki: Buffer, challenge: AttestationChallenge): CheckFailure | undefined;
  /** The statement's binding to this CA and to the attested key (the rest of check 3); undefined when it holds. */
  bindingProblem(challenge: AttestationChallenge): CheckFailure | undefined;
}

/**
 * An attestation format (draft-ietf-acme-device-attest `fmt`): a plug-in of
 * the format registry. `parse` touches no database and throws
 * AttestationError for a malformed statement (bad input: nothing is written).
 * A device class names the formats it accepts (`attestationFormats`).
 */
export interface AttestationFormat {
  readonly fmt: string;
  parse(envelope: AttestationEnvelope): AttestationEvidence;
}

/** The formats the CA verifies, by `fmt`. */
export class AttestationFormats {
  private readonly byFmt = new Map<string, AttestationFormat>();

  constructor(formats: readonly AttestationFormat[] = []) {
    for (const format of formats) this.register(format);
  }

  /** Adds a format; returns what removes it again (tests). */
  register(format: AttestationFormat): () => void {
    if (this.byFmt.has(format.fmt)) throw new Error(`attestation format ${format.fmt} is registered already`);
    this.byFmt.set(format.fmt, format);
    return () => {
      if (this.byFmt.get(format.fmt) === format) this.byFmt.delete(format.fmt);
    };
  }

  has(fmt: string): boolean {
    return this.byFmt.has(fmt);
  }

  names(): string[] {
    return [...this.byFmt.keys()];
  }

  /** The attestation object, parsed by the format its `fmt` names; AttestationError when malformed or of a format not registered. */
  parse(bytes: Buffer): AttestationEvidence {
    const envelope = parseEnvelope(bytes);
    const format = this.byFmt.get(envelope.fmt);
    if (!format) throw new AttestationError('attestation object', `fmt ${JSON.stringify(envelope.fmt)} is not a format this CA verifies (${this.names().join(', ')})`);
    return format.parse(envelope);
  }
}
