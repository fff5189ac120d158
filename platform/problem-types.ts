/** RFC 7807 problem types of the devid-ca HTTP APIs, for every layer that answers HTTP (ACME maps to its own urns). */
export const PROBLEM = {
  malformed: 'urn:devid-ca:problem:malformed',
  badCSR: 'urn:devid-ca:problem:bad-csr',
  badPublicKey: 'urn:devid-ca:problem:bad-public-key',
  unauthorized: 'urn:devid-ca:problem:unauthorized',
  forbidden: 'urn:devid-ca:problem:forbidden',
  notFound: 'urn:devid-ca:problem:not-found',
  methodNotAllowed: 'urn:devid-ca:problem:method-not-allowed',
  conflict: 'urn:devid-ca:problem:conflict',
  gone: 'urn:devid-ca:problem:gone',
  tooLarge: 'urn:devid-ca:problem:request-too-large',
  headersTooLarge: 'urn:devid-ca:problem:headers-too-large',
  unsupportedMediaType: 'urn:devid-ca:problem:unsupported-media-type',
  unavailable: 'urn:devid-ca:problem:unavailable',
  internal: 'urn:devid-ca:problem:internal',
} as const;
