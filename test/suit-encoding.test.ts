import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { cbor } from '../ca/cbor.ts';
import { encodeManifest } from '../ca/suit.ts';
import { NAMESPACE_DNS, uuidText, uuidV5 } from '../ca/uuid.ts';
import { outsideVerify } from './support/suit-verifier.ts';

/** draft-ietf-suit-manifest appendix B, example 0 (secure boot): its manifest and its authentication wrapper's digest. */
const EXAMPLE_0_MANIFEST = 'a50101020003585fa202818141000458568614a40150fa6b4a53d5ad5fdfbe9de663e4d41ffe02501492af1425695e48bf429b2d51f2ab45'
  + '035824822f582000112233445566778899aabbccddeeff0123456789abcdeffedcba98765432100e1987d0010f020f074382030f0943821702';
const EXAMPLE_0_MANIFEST_DIGEST = '6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af';

/** Example 0 signed with ES256 (draft-ietf-suit-manifest-27, appendix B.1), and the draft's example public key. */
const EXAMPLE_0_ENVELOPE = 'd86ba2025873825824822f58206658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af584ad28443a10126a0f658406c56f1'
  + '463de7d83c945b88bceb0797958938942a71b2b4a7dffe2b4e8f07b91dd4ee3c6c48f869e668f6ce9113c32de6b2b17dbcabdcad5588102d486c3884'
  + 'df035871' + EXAMPLE_0_MANIFEST;
const EXAMPLE_KEY = [
  '-----BEGIN PUBLIC KEY-----',
  'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhJaBGq4LqqvSYVcYnuzaJr6qi/Eb',
  'bz/m4rVlnIXbwK07HypLbAmBMcCjbazR14vTgdzfsJwFLbM5kdtzOLSolg==',
  '-----END PUBLIC KEY-----',
].join('\n');

describe('SUIT encoding against draft-ietf-suit-manifest\'s examples', () => {
  it('the vendor id of the examples is UUIDv5(DNS, "arm.com"), as RFC 9124 4.2.2 derives it', () => {
    expect(uuidText(uuidV5(NAMESPACE_DNS, 'arm.com'))).to.equal('fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe');
  });

  it('the manifest of example 0, byte for byte, and the SUIT_Digest over its bstr-wrapped form', () => {
    const manifest = encodeManifest({
      sequence: 0,
      componentId: [Buffer.from([0])],
      vendorId: Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex'),
      classId: Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex'),
      imageDigest: Buffer.from('00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210', 'hex'),
      imageSize: 34768,
    });
    expect(manifest.toString('hex')).to.equal(EXAMPLE_0_MANIFEST);
    expect(createHash('sha256').update(cbor(manifest)).digest('hex')).to.equal(EXAMPLE_0_MANIFEST_DIGEST);
  });

  it('the outside verifier accepts the draft\'s signed example 0 (detached payload = the SUIT_Digest) and refuses it with a byte flipped', () => {
    const envelope = Buffer.from(EXAMPLE_0_ENVELOPE, 'hex');
    const verdict = outsideVerify(envelope, { publicKeyPem: EXAMPLE_KEY });
    expect(verdict.ok, verdict.reason).to.equal(true);
    expect(verdict.facts).to.include({ sequence: 0, imageSize: 34768, imageDigest: '00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210', manifestSha256: EXAMPLE_0_MANIFEST_DIGEST });
    for (const at of [40, 100, envelope.length - 5]) {
      const flipped = Buffer.from(envelope);
      flipped[at]! ^= 0x80;
      expect(outsideVerify(flipped, { publicKeyPem: EXAMPLE_KEY }).ok, `byte ${at}`).to.equal(false);
    }
  });

  it('sequence numbers and sizes above 2^32 stay integers in their shortest form', () => {
    const manifest = encodeManifest({ sequence: 2 ** 40, componentId: [Buffer.from([0])], vendorId: Buffer.alloc(16), classId: Buffer.alloc(16), imageDigest: Buffer.alloc(32), imageSize: 5 });
    expect(manifest.subarray(0, 13).toString('hex')).to.equal('a50101021b0000010000000000');
  });
});
