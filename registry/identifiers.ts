import { malformed } from '../errors/domain-error.ts';

/** SPEC: X.520 serialNumber is a PrintableString, which has no "_". */
export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;
/** Models, batches, lines, vendors, principals. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** Models become the CN of birth certificates: at most 64 characters (RFC 5280 ub-common-name). */
export const MODEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkModelName(value: unknown): string {
  if (typeof value !== 'string' || !MODEL_PATTERN.test(value)) {
    throw malformed('model must be 1-64 characters: a letter or digit, then letters, digits, ".", "_" or "-"');
  }
  return value;
}

/** A JSON object body with no fields but the given ones; anything else is malformed. */
export function bodyFields<K extends string>(body: unknown, fields: readonly K[]): Partial<Record<K, unknown>> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw malformed(`the body must be a JSON object {${fields.map((f) => `"${f}"`).join(', ')}}`);
  }
  const unknown = Object.keys(body).find((key) => !(fields as readonly string[]).includes(key));
  if (unknown !== undefined) throw malformed(`unknown field ${unknown}`);
  return body as Partial<Record<K, unknown>>;
}

export function checkSerial(value: unknown): string {
  if (typeof value !== 'string' || !SERIAL_PATTERN.test(value)) {
    throw malformed('serial must be 1-64 characters: a letter or digit, then letters, digits, "." or "-"');
  }
  return value;
}

export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw malformed(`${field} must be 1-128 characters: a letter or digit, then letters, digits, ".", "_", "@" or "-"`);
  }
  return value;
}
