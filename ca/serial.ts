import { randomBytes } from 'node:crypto';

/**
 * A 128-bit random positive serial as lowercase hex (SPEC section 2). The
 * first byte is never zero, so the hex is what @peculiar/x509 reads back.
 */
export function randomSerial(): string {
  for (;;) {
    const bytes = randomBytes(16);
    if (bytes[0] !== 0) return bytes.toString('hex');
  }
}
