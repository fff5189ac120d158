import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { checkCertificate, type CheckedCertificate } from '../pki/certificate-key.ts';
import { verifyEnvelope, type VerifiedEnvelope } from '../pki/suit-envelope.ts';

/** A certificate in a file or an answer, PEM or DER, as one DER. */
export function certificateDer(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  const pem = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(text);
  return pem ? Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64') : bytes;
}

/**
 * The firmware intermediate a device anchors manifests at (never the root
 * alone: the root also anchors every device key). Given as a file, it is
 * trusted as the device maker provisioned it; fetched from the CA's
 * plain-HTTP listener, it must be signed by the root the device trusts.
 * Either way it must be a CA certificate.
 */
export function firmwareAnchor(der: Buffer, root?: CheckedCertificate): CheckedCertificate {
  const anchor = checkCertificate(der);
  if (!anchor.cert.ca) throw new Error('the firmware intermediate given is not a CA certificate');
  if (root && !(anchor.cert.checkIssued(root.cert) && anchor.cert.verify(root.key.key))) {
    throw new Error('the firmware intermediate from the CA is not signed by the root this device trusts');
  }
  return anchor;
}

/** GET <base>/ca/firmware.crt on the CA's plain-HTTP listener (where CRLs are served): the answer is checked, not trusted. */
export function fetchFirmwareIntermediate(base: string): Promise<Buffer> {
  const url = `${base.replace(/\/+$/, '')}/ca/firmware.crt`;
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > 64 * 1024) req.destroy(new Error(`${url} answered more than 64 KiB: not a certificate`));
        else chunks.push(chunk);
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${url} answered HTTP ${res.statusCode}: has this CA a firmware intermediate ("devid-ca ca create firmware")?`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${url} did not answer within 15 s`)));
    req.on('error', reject);
  });
}

export interface ReleaseCheck extends VerifiedEnvelope {
  /** The image's SHA-256, as read. */
  imageSha256: Buffer;
}

/**
 * `devid-device firmware verify`: the envelope (signature, chain to the
 * firmware intermediate, codeSigning, manifest digest), then the image
 * against the manifest's digest and size; `minSequence`, when given, is
 * the sequence the device runs: a lower one is a rollback.
 */
export function verifyRelease(envelope: Buffer, image: Buffer, anchors: readonly CheckedCertificate[], minSequence?: number): ReleaseCheck {
  const verified = verifyEnvelope(envelope, anchors);
  const imageSha256 = createHash('sha256').update(image).digest();
  if (!imageSha256.equals(verified.imageDigest)) throw new Error(`the image's SHA-256 ${imageSha256.toString('hex')} is not the manifest's ${verified.imageDigest.toString('hex')}`);
  if (image.length !== verified.imageSize) throw new Error(`the image is ${image.length} bytes, the manifest says ${verified.imageSize}`);
  if (minSequence !== undefined && verified.sequence < minSequence) throw new Error(`the release's sequence ${verified.sequence} is below ${minSequence}: a rollback`);
  return { ...verified, imageSha256 };
}
