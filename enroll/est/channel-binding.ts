import { timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import * as asn1js from 'asn1js';
import type { CertificationRequest } from '@peculiar/asn1-csr';
import { CHALLENGE_PASSWORD } from './csrattrs.ts';

/** RFC 9266 2: the tls-exporter channel binding, 32 bytes under this label with an empty context. */
export const EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
export const EXPORTER_LENGTH = 32;

/**
 * The session's tls-exporter value, TLS 1.3 only (RFC 9266 3: with TLS 1.2
 * it binds nothing without extended master secret). RFC 8446 7.5 has no
 * "no context": an absent context is the empty one, so the empty buffer
 * given here is what every TLS 1.3 peer computes (under TLS 1.2, RFC 5705,
 * the two differ: test/est.test.ts shows both).
 */
export function tlsExporter(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0));
}

/**
 * Why the CSR is not bound to this session, or undefined: its
 * challengePassword (RFC 2985 5.4.1, one value, a UTF8String or
 * PrintableString) must be the padded base64 of the session's tls-exporter
 * (RFC 7030 3.5), so the CSR's key was sent through the session the client
 * certificate's key opened. Compared in constant time.
 */
export function bindingProblem(request: CertificationRequest, socket: TLSSocket): string | undefined {
  const passwords = request.certificationRequestInfo.attributes.filter((a) => a.type === CHALLENGE_PASSWORD);
  if (passwords.length === 0) return 'the CSR has no challengePassword: it must carry the base64 of the TLS channel binding tls-exporter (RFC 9266)';
  if (passwords.length > 1 || passwords[0]!.values.length !== 1) return 'the CSR must carry exactly one challengePassword value';
  const presented = directoryString(passwords[0]!.values[0]!);
  if (presented === undefined) return 'the challengePassword must be a UTF8String or PrintableString';
  const expected = Buffer.from(tlsExporter(socket).toString('base64'), 'latin1');
  const given = Buffer.from(presented, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return 'the challengePassword is not the channel binding of this TLS session (tls-exporter, RFC 9266, padded base64)';
  }
  return undefined;
}

/** The one challengePassword of a CSR as text, undefined when there is none or it is not a single UTF8String or PrintableString. */
export function challengePasswordOf(request: CertificationRequest): string | undefined {
  const passwords = request.certificationRequestInfo.attributes.filter((a) => a.type === CHALLENGE_PASSWORD);
  return passwords.length === 1 && passwords[0]!.values.length === 1 ? directoryString(passwords[0]!.values[0]!) : undefined;
}

/** The text of a UTF8String or PrintableString, undefined for anything else or trailing bytes. */
function directoryString(value: unknown): string | undefined {
  // The CSR parser hands a NULL value over as null, not as bytes.
  if (!(value instanceof ArrayBuffer)) return undefined;
  const parsed = asn1js.fromBER(value);
  if (parsed.offset !== value.byteLength) return undefined;
  const { result } = parsed;
  return result instanceof asn1js.Utf8String || result instanceof asn1js.PrintableString ? result.valueBlock.value : undefined;
}
