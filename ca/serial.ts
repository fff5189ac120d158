import { randomBytes } from 'node:crypto';

/**
 * A 128-bit random positive serial (docs/reference/certificates.md): 16 random bytes whose
 * first byte is not zero, so the lowercase hex is what @peculiar/x509 and
 * OpenSSL print back and the INTEGER has 16 bytes of value.
 */
export function randomSerial(): Buffer {
  for (;;) {
    const bytes = randomBytes(16);
    if (bytes[0] !== 0) return bytes;
  }
}
