import { DEVID } from './devid.ts';
import { AttestationFormats } from './format.ts';
import { TPM } from './tpm/tpm-format.ts';

/**
 * The attestation formats this CA verifies, by `fmt`. A new format
 * (`apple`, `android-key`) is a module beside devid.ts (or a folder, as
 * tpm/) implementing AttestationFormat (format.ts), listed here; device
 * classes then name it in `attestationFormats`.
 */
export const ATTESTATION_FORMATS = new AttestationFormats([DEVID, TPM]);

/** What a device class accepts when it names no formats. */
export const DEFAULT_ATTESTATION_FORMATS: readonly string[] = ['devid'];
