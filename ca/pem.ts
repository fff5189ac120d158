import * as x509 from '@peculiar/x509';

/** PEM of a DER certificate, as handed to clients and shown in histories. */
export function certificatePem(der: Uint8Array): string {
  return x509.PemConverter.encode(new Uint8Array(der), 'CERTIFICATE');
}
