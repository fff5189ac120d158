import { ANDROID_KEY } from './android-key/android-key-format.ts';
import { APPLE } from './apple/apple-format.ts';
import { DEVID } from './devid.ts';
import { AttestationFormats } from './format.ts';
import { TPM } from './tpm/tpm-format.ts';

/**
 * The attestation formats this CA verifies, by `fmt`. A new format is a
 * module beside devid.ts (or a folder, as tpm/, android-key/, apple/)
 * implementing AttestationFormat (format.ts), listed here; device classes
 * then name it in `attestationFormats`.
 */
export const ATTESTATION_FORMATS = new AttestationFormats([DEVID, TPM, ANDROID_KEY, APPLE]);

/** What a device class accepts when it names no formats. */
export const DEFAULT_ATTESTATION_FORMATS: readonly string[] = ['devid'];
