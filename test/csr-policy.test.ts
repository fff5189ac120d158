import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { DomainError } from '../errors/domain-error.ts';
import { verifyCsr } from '../pki/csr.ts';
import { checkCsr } from '../registry/enrollment/csr-policy.ts';
import { estCsr, newKey } from './support/est-client.ts';

const CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** The CSR policy every front end shares (ACME finalize, EST): names, attributes, and values that do not parse. */
describe('CSR policy (registry/enrollment/csr-policy.ts)', () => {
  async function csr(options: Parameters<typeof estCsr>[1]): Promise<{ text: string; spki: Buffer }> {
    const der = Buffer.from((await estCsr(await newKey(), options)).replace(/\s+/g, ''), 'base64');
    const text = der.toString('base64url');
    return { text, spki: verifyCsr(text).publicKey.spki };
  }

  function refused(run: () => unknown, detail: RegExp): void {
    let thrown: unknown;
    try {
      run();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(DomainError);
    expect((thrown as DomainError).kind).to.equal('badCSR');
    expect((thrown as DomainError).detail).to.match(detail);
  }

  it('an extension request or subjectAltName that does not parse is badCSR, not a fault', async () => {
    for (const hex of ['020101', '3003020101', '300d300b0603551d1104040c0a0102']) {
      const { text, spki } = await csr({ name: 'CN=SN-1', attributes: [new x509.Attribute(EXTENSION_REQUEST, [Buffer.from(hex, 'hex')])] });
      refused(() => checkCsr(text, spki, 'SN-1'), /extension request|subjectAltName/);
    }
  });

  it('a challengePassword is refused unless the front end checks it (EST)', async () => {
    const { text, spki } = await csr({ name: 'CN=SN-1', challengePassword: 'binding' });
    refused(() => checkCsr(text, spki, 'SN-1'), /no attribute but an extension request/);
    expect(checkCsr(text, spki, 'SN-1', [CHALLENGE_PASSWORD]).publicKey.spki.equals(spki)).to.equal(true);
    refused(() => checkCsr(text, spki, 'SN-2', [CHALLENGE_PASSWORD]), /CN=SN-2/);
  });
});
