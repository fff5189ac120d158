import { malformed } from '../errors/domain-error.ts';

/** X.520 serialNumber is a PrintableString, which has no "_". */
export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;
/**
 * Factory batches: the serial's alphabet and length, so a batch name is as
 * safe in a URL path, a CRL scope and a lot label as a serial.
 */
export const BATCH_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;
/** Models, lines, vendors, principals. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
/** Models become the CN of birth certificates: at most 64 characters (RFC 5280 ub-common-name). */
export const MODEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkModelName(value: unknown): string {
  if (typeof value !== 'string' || !MODEL_PATTERN.test(value)) {
    throw malformed('model must be 1-64 characters: a letter or digit, then letters, digits, ".", "_" or "-"');
  }
  return value;
}

export function checkSerial(value: unknown): string {
  if (typeof value !== 'string' || !SERIAL_PATTERN.test(value)) {
    throw malformed('serial must be 1-64 characters: a letter or digit, then letters, digits, "." or "-"');
  }
  return value;
}

export function checkBatch(value: unknown): string {
  if (typeof value !== 'string' || !BATCH_PATTERN.test(value)) {
    throw malformed('batch must be 1-64 characters: a letter or digit, then letters, digits, "." or "-"');
  }
  return value;
}

export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw malformed(`${field} must be 1-128 characters: a letter or digit, then letters, digits, ".", "_", "@" or "-"`);
  }
  return value;
}

/** In a `u` pattern, \p{Cs} matches only surrogates that are not half of a pair. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Free text that lands in the audit log and in certificates: bounded, no
 * control characters but tab and newline, and well-formed Unicode (a lone
 * UTF-16 surrogate has no UTF-8 form, so RFC 8785 cannot canonicalise it).
 */
export function checkText(field: string, value: unknown, max: number, options: { multiline?: boolean } = {}): string {
  const controls = options.multiline ? /[\u0000-\u0008\u000b-\u001f\u007f]/ : /[\u0000-\u001f\u007f]/;
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > max || controls.test(value) || LONE_SURROGATE.test(value)) {
    throw malformed(`${field} must be 1-${max} characters of text, without control characters`);
  }
  return value;
}

/** A certificate serial as operators give it: the hex of the INTEGER, any case, an even number of digits. */
export function checkCertificateSerial(value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{2,64}$/.test(value) || value.length % 2 !== 0) {
    throw malformed('a certificate serial is its hex value, 2 to 64 digits, an even number of them');
  }
  return value.toLowerCase();
}
