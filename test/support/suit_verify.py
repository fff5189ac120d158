#!/usr/bin/env python3
"""An outside verifier of devid-ca's signed firmware manifests, written from the
RFCs with cbor2 and cryptography only (none of devid-ca's code):

- draft-ietf-suit-manifest: SUIT_Envelope_Tagged (tag 107), the authentication
  wrapper [bstr SUIT_Digest, bstr COSE_Sign1_Tagged], SUIT_Digest over the
  bstr-wrapped manifest, SHA-256 as COSE algorithm -16;
- RFC 9052: COSE_Sign1_Tagged (tag 18), Sig_structure
  ["Signature1", protected, external_aad, payload], the detached payload being
  the SUIT_Digest as the wrapper carries it; ES256 (-7) with raw r||s;
- RFC 9360: x5chain (label 33), the signer first;
- RFC 5280: the chain signer -> firmware intermediate -> the given root, CA
  basic constraints on the intermediate, id-kp-codeSigning on the signer.

Usage: suit_verify.py ENVELOPE_FILE ROOT_PEM_FILE
       suit_verify.py --key PUBLIC_KEY_PEM_FILE ENVELOPE_FILE   (a bare key, no
       x5chain: how the draft's own examples are signed)
Prints the verified manifest's facts as JSON; exits 1 with the reason otherwise.
"""
import hashlib
import json
import sys

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import ExtendedKeyUsageOID

SHA256 = -16
ES256 = -7


class Refused(Exception):
    pass


def need(condition, reason):
    if not condition:
        raise Refused(reason)


def signed_by(cert, issuer):
    """RFC 5280 6.1.3: the issuer's name and its key's signature on the certificate."""
    need(cert.issuer == issuer.subject, f"{cert.subject.rfc4514_string()} is not issued by {issuer.subject.rfc4514_string()}")
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except Exception:
        raise Refused(f"the signature on {cert.subject.rfc4514_string()} does not verify under {issuer.subject.rfc4514_string()}")


def is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def verify(envelope_bytes, root=None, key=None):
    envelope = cbor2.loads(envelope_bytes)
    need(isinstance(envelope, cbor2.CBORTag) and envelope.tag == 107, "not a SUIT_Envelope_Tagged (tag 107)")
    need(isinstance(envelope.value, dict), "the envelope is not a map")
    auth_bstr, manifest_bstr = envelope.value.get(2), envelope.value.get(3)
    need(isinstance(auth_bstr, bytes) and isinstance(manifest_bstr, bytes), "the envelope lacks its authentication wrapper or manifest")

    auth = cbor2.loads(auth_bstr)
    need(isinstance(auth, list) and len(auth) >= 2, "the authentication wrapper needs a digest and a signature")
    digest_bstr = auth[0]
    algorithm, manifest_digest = cbor2.loads(digest_bstr)
    need(algorithm == SHA256, "the manifest digest is not SHA-256 (-16)")
    # The digest covers the manifest as the envelope carries it: bstr-wrapped.
    wrapped_manifest = cbor2.dumps(manifest_bstr)
    need(hashlib.sha256(wrapped_manifest).digest() == manifest_digest, "the manifest does not match the authentication wrapper's digest")

    sign1 = cbor2.loads(auth[1])
    need(isinstance(sign1, cbor2.CBORTag) and sign1.tag == 18, "the signature is not a COSE_Sign1_Tagged (tag 18)")
    protected_bstr, unprotected, payload, signature = sign1.value
    need(payload is None, "the COSE_Sign1 payload must be detached (nil)")
    protected = cbor2.loads(protected_bstr)
    need(protected.get(1) == ES256, "the protected header's alg is not ES256 (-7)")
    signer = intermediate = None
    if key is None:
        chain = unprotected.get(33)
        chain = [chain] if isinstance(chain, bytes) else chain
        need(isinstance(chain, list) and len(chain) >= 2, "x5chain must carry the signer and the firmware intermediate")
        certificates = [x509.load_der_x509_certificate(der) for der in chain]
        signer, intermediate = certificates[0], certificates[1]
        key = signer.public_key()

    signed = cbor2.dumps(["Signature1", protected_bstr, b"", digest_bstr])
    need(len(signature) == 64, "an ES256 signature is 64 bytes of r||s")
    der_signature = utils.encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der_signature, signed, ec.ECDSA(hashes.SHA256()))
    except Exception:
        raise Refused("the COSE signature does not verify with the x5chain's first certificate (or the key given)")

    if signer is not None:
        signed_by(signer, intermediate)
        signed_by(intermediate, root)
        need(is_ca(intermediate), "the firmware intermediate is not a CA")
        need(not is_ca(signer), "the signer must not be a CA")
        usages = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        need(ExtendedKeyUsageOID.CODE_SIGNING in usages, "the signer's certificate lacks id-kp-codeSigning")

    manifest = cbor2.loads(manifest_bstr)
    need(manifest.get(1) == 1, "manifest version is not 1")
    common = cbor2.loads(manifest[3])
    shared = cbor2.loads(common[4])
    need(shared[0] == 20 and isinstance(shared[1], dict), "the shared sequence does not start by setting parameters")
    parameters = shared[1]
    image_algorithm, image_digest = cbor2.loads(parameters[3])
    need(image_algorithm == SHA256, "the image digest is not SHA-256")
    return {
        "sequence": manifest[2],
        "components": [[part.hex() for part in component] for component in common[2]],
        "vendorId": parameters[1].hex(),
        "classId": parameters[2].hex(),
        "imageDigest": image_digest.hex(),
        "imageSize": parameters[14],
        "manifestSha256": manifest_digest.hex(),
        "signer": signer.subject.rfc4514_string() if signer else None,
        "intermediate": intermediate.subject.rfc4514_string() if intermediate else None,
    }


def main():
    root = key = None
    if sys.argv[1] == "--key":
        with open(sys.argv[2], "rb") as f:
            key = serialization.load_pem_public_key(f.read())
        envelope_file = sys.argv[3]
    else:
        with open(sys.argv[2], "rb") as f:
            root = x509.load_pem_x509_certificate(f.read())
        envelope_file = sys.argv[1]
    with open(envelope_file, "rb") as f:
        envelope = f.read()
    try:
        print(json.dumps(verify(envelope, root, key)))
    except Refused as refused:
        print(f"refused: {refused}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # a malformed envelope is refused, whatever broke
        print(f"refused: malformed envelope ({type(err).__name__}: {err})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
