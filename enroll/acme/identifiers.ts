import type { DeviceName } from '../../ca/profiles.ts';
import type { PendingEnrollment } from '../../registry/enrollment/types.ts';
import type { AcmeOrderRecord } from '../../store/types.ts';
import { AcmeProblem, acmeProblem } from './problems.ts';

/** draft-ietf-acme-device-attest-09 section 3: the device serial, optionally "/" and the assigner's OID. */
export const PERMANENT_IDENTIFIER = 'permanent-identifier';
/** draft-ietf-acme-device-attest-09 section 4: hwSerialNum "/" hwType of a HardwareModuleName (RFC 4108). */
export const HARDWARE_MODULE = 'hardware-module';

/**
 * The dotted OID of draft-09's ABNF (`assigner-value`, `hw-type-value`):
 * first arc 0 or 1 with a second arc 0-39, or 2 with any; no leading zeros.
 */
const DOTTED_OID = /^(?:[01]\.[1-3]?[0-9]|2\.(?:0|[1-9][0-9]*))(?:\.(?:0|[1-9][0-9]*))*$/;
/** In a `u` pattern, \p{Cs} matches only surrogates that are not half of a pair: a string with one has no UTF-8 form. */
const LONE_SURROGATE = /\p{Cs}/u;
/** No device identifier of ours comes near this; the ABNF sets no bound, the request body does (64 KiB). */
const MAX_VALUE_LENGTH = 1024;

/** An order's identifier as the client sent it, split by draft-09's ABNF. */
export interface OrderedIdentifier {
  type: typeof PERMANENT_IDENTIFIER | typeof HARDWARE_MODULE;
  /** The value as ordered: the certificate carries exactly this. */
  value: string;
  /** The part before "/": the device serial (for hardware-module, hwSerialNum as UTF-8). */
  serial: string;
  /** How the certificate's SAN names the device. */
  name: DeviceName;
}

/**
 * An identifier of a newOrder: the type must be one of draft-09's
 * (unsupportedIdentifier otherwise) and the value must match its ABNF
 * production (draft-09 3.1, 4.1: a non-conforming value is `malformed`).
 * Whether this CA accepts it (a serial it knows, its assigner OID, the
 * birth certificate's hwType) is the registration authority's decision.
 */
export function parseOrderedIdentifier(identifier: unknown): OrderedIdentifier {
  if (typeof identifier !== 'object' || identifier === null || Array.isArray(identifier)) throw acmeProblem.malformed('an identifier is {"type", "value"}');
  const { type, value } = identifier as { type?: unknown; value?: unknown };
  if (type !== PERMANENT_IDENTIFIER && type !== HARDWARE_MODULE) {
    throw new AcmeProblem('unsupportedIdentifier', 400, `only "${PERMANENT_IDENTIFIER}" and "${HARDWARE_MODULE}" identifiers are issued here`);
  }
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_VALUE_LENGTH || LONE_SURROGATE.test(value)) {
    throw acmeProblem.malformed(`a ${type} value is a UTF-8 string of 1 to ${MAX_VALUE_LENGTH} characters`);
  }
  const slash = value.indexOf('/');
  const serial = slash === -1 ? value : value.slice(0, slash);
  const oid = slash === -1 ? undefined : value.slice(slash + 1);
  if (serial.length === 0) throw acmeProblem.malformed(`the ${type} value has nothing before "/"`);
  if (type === HARDWARE_MODULE) {
    if (oid === undefined || !DOTTED_OID.test(oid)) throw acmeProblem.malformed('a hardware-module value is <hwSerialNum>/<hwType as a dotted OID>');
    return { type, value, serial, name: { type, hwType: oid } };
  }
  if (oid === undefined) return { type, value, serial, name: { type } };
  if (!DOTTED_OID.test(oid)) throw acmeProblem.malformed('a permanent-identifier value is <serial> or <serial>/<assigner as a dotted OID>, with no other "/"');
  return { type, value, serial, name: { type, assigner: oid } };
}

/** The identifier an order was made for: as ordered, or (orders made before identifiers were kept) the plain serial. */
export function identifierOf(order: Pick<AcmeOrderRecord, 'identifier' | 'deviceSerial'>): { type: string; value: string } {
  return order.identifier ?? { type: PERMANENT_IDENTIFIER, value: order.deviceSerial };
}

/** The registration authority's view of an order: the device, the certificate it renews, and how the certificate names the device. */
export function pendingOf(order: AcmeOrderRecord): PendingEnrollment {
  const pending: PendingEnrollment = { id: order.id, serial: order.deviceSerial, replaces: order.replaces };
  // Parsed when the order was made: it parses the same now.
  if (order.identifier) pending.name = parseOrderedIdentifier(order.identifier).name;
  return pending;
}
