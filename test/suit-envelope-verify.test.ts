import 'reflect-metadata';
import { createHash, sign as nodeSign, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { Encoder, Tag } from 'cbor-x';
import { encodeManifest, signEnvelope } from '../ca/suit.ts';
import { checkCertificate } from '../pki/certificate-key.ts';
import { CODE_SIGNING, EnvelopeError, verifyEnvelope } from '../pki/suit-envelope.ts';

const IMAGE = Buffer.from('an image\n'.repeat(50));
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

async function keys(): Promise<{ pair: CryptoKeyPair; node: KeyObject }> {
  const pair = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
  const { createPrivateKey } = await import('node:crypto');
  const node = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey)), format: 'der', type: 'pkcs8' });
  return { pair, node };
}

/** A firmware intermediate (self-signed here: the verifier anchors at it, whatever is above) and signers under it. */
async function ca() {
  const root = await keys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=test firmware CA', keys: root.pair, signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const signer = async (extensions: x509.Extension[]) => {
    const own = await keys();
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '02', subject: 'CN=signer', issuer: cert.subject, publicKey: own.pair.publicKey, signingKey: root.pair.privateKey, signingAlgorithm: alg, extensions,
    });
    return { der: Buffer.from(leaf.rawData), sign: async (data: Buffer) => nodeSign('sha256', data, { key: own.node, dsaEncoding: 'ieee-p1363' }) };
  };
  return { anchor: checkCertificate(Buffer.from(cert.rawData)), signer };
}

const manifest = () => encodeManifest({
  sequence: 7, componentId: [Buffer.from([0])], vendorId: Buffer.alloc(16, 1), classId: Buffer.alloc(16, 2),
  imageDigest: createHash('sha256').update(IMAGE).digest(), imageSize: IMAGE.length,
});

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(EnvelopeError);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
};

describe('verifyEnvelope (pki/suit-envelope.ts): what a device checks before it installs', () => {
  it('a good envelope verifies and says its sequence, ids, image digest and size, and its manifest hash', async () => {
    const { anchor, signer } = await ca();
    const good = await signer([new x509.ExtendedKeyUsageExtension([CODE_SIGNING], false)]);
    const signed = await signEnvelope(manifest(), [good.der], good.sign);
    const verified = verifyEnvelope(signed.envelope, [anchor]);
    expect(verified).to.deep.include({ manifestSha256: signed.manifestSha256, sequence: 7, imageSize: IMAGE.length });
    expect(verified.imageDigest.equals(createHash('sha256').update(IMAGE).digest())).to.equal(true);
    expect(verified.vendorId.equals(Buffer.alloc(16, 1))).to.equal(true);
  });

  it('refuses a signer without id-kp-codeSigning, a signer the anchor did not issue, a CA as signer', async () => {
    const { anchor, signer } = await ca();
    const serverAuth = await signer([new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1'], false)]);
    expect(refusal(() => verifyEnvelope(Buffer.alloc(0), []))).to.match(/no firmware intermediate/);
    const noCodeSigning = await signEnvelope(manifest(), [serverAuth.der], serverAuth.sign);
    expect(refusal(() => verifyEnvelope(noCodeSigning.envelope, [anchor]))).to.match(/lacks id-kp-codeSigning/);
    const other = await ca();
    const stranger = await other.signer([new x509.ExtendedKeyUsageExtension([CODE_SIGNING], false)]);
    const foreign = await signEnvelope(manifest(), [stranger.der], stranger.sign);
    expect(refusal(() => verifyEnvelope(foreign.envelope, [anchor]))).to.match(/not issued by the firmware intermediate/);
    const caSigner = await signer([new x509.BasicConstraintsExtension(true, undefined, true), new x509.ExtendedKeyUsageExtension([CODE_SIGNING], false)]);
    const byCa = await signEnvelope(manifest(), [caSigner.der], caSigner.sign);
    expect(refusal(() => verifyEnvelope(byCa.envelope, [anchor]))).to.match(/is a CA certificate/);
  });

  it('refuses any one byte flipped, and malformed CBOR, with an EnvelopeError (never another exception)', async () => {
    const { anchor, signer } = await ca();
    const good = await signer([new x509.ExtendedKeyUsageExtension([CODE_SIGNING], false)]);
    const { envelope } = await signEnvelope(manifest(), [good.der], good.sign);
    for (let at = 0; at < envelope.length; at += 1) {
      const flipped = Buffer.from(envelope);
      flipped[at] ^= 0x01;
      expect(() => verifyEnvelope(flipped, [anchor]), `byte ${at}`).to.throw(EnvelopeError);
    }
    const encoder = new Encoder({ mapsAsObjects: false, useRecords: false });
    for (const bad of [Buffer.from('not cbor'), encoder.encode(new Tag(new Map(), 107)), encoder.encode([1, 2, 3]), envelope.subarray(0, envelope.length - 5)]) {
      expect(() => verifyEnvelope(bad, [anchor])).to.throw(EnvelopeError);
    }
  });
});
