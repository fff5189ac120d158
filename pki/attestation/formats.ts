import { DEVID } from './devid.ts';
import { AttestationFormats } from './format.ts';

/**
 * The attestation formats this CA verifies, by `fmt`. A new format (TPM
 * `tpm`, `apple`, `android-key`) is a module beside devid.ts implementing
 * AttestationFormat (format.ts), listed here; device classes then name it
 * in `attestationFormats`.
 */
export const ATTESTATION_FORMATS = new AttestationFormats([DEVID]);

/** What a device class accepts when it names no formats. */
export const DEFAULT_ATTESTATION_FORMATS: readonly string[] = ['devid'];
