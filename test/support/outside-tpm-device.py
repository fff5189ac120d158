#!/usr/bin/python3
"""A TPM 2.0 device written from the standards alone, as an outside maker would.

It shares no code with devid-ca or its reference client. Sources: TPM 2.0
Library Part 2 and 3 (through the TSS's ESAPI, python3-tpm2-pytss), RFC 8555
(ACME; JWS by python3-jwcrypto), draft-ietf-acme-device-attest-09 with W3C
WebAuthn 8.3 (the `tpm` attestation format, CBOR by python3-cbor2), RFC 2986
(PKCS#10, keys and names by python3-cryptography), RFC 9773 (ACME ARI
certID and `replaces`), and the CA's factory API as its device makers' docs
describe it.

  outside-tpm-device.py birth  --tcti T --base URL --ca ROOT --state DIR --serial S --model M --batch B
      (the factory token in DEVID_FACTORY_TOKEN) the factory line: an
      attestation key (AK) in the TPM, made persistent, and its birth
      certificate from a CSR the TPM signed through TPM2_Hash + TPM2_Sign.
  outside-tpm-device.py enroll --tcti T --base URL --ca ROOT --state DIR --serial S
      the device: an ACME account, an order for its permanent-identifier,
      device-attest-01 with fmt "tpm" for a new TPM key, finalize, download;
      then a renewal naming the first certificate in `replaces`; then one
      forgery (the extraData of another challenge), whose refusal it reports.

It prints one JSON object on standard output.
"""

import argparse
import base64
import hashlib
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jws
from tpm2_pytss import ESAPI
from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_RH, TPM2_ST, TPMA_OBJECT
from tpm2_pytss.types import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPMT_SIG_SCHEME, TPMT_TK_HASHCHECK

AK_HANDLE = 0x81000202
# TPMA_OBJECT of an attestation key: restricted to signing what the TPM made, and never leaving it.
AK_ATTRIBUTES = (TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
                 | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT)
# An operational key: signs any digest, never leaves its TPM.
KEY_ATTRIBUTES = (TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
                  | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT)
STORAGE_ATTRIBUTES = (TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
                      | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.DECRYPT | TPMA_OBJECT.NODA)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- DER, only the few wrappers PKCS#10 needs around what cryptography encodes (Name, SubjectPublicKeyInfo) ---

def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + content


ECDSA_WITH_SHA256 = der(0x30, der(0x06, bytes.fromhex("2a8648ce3d040302")))


def csr(serial: str, spki_der: bytes, sign) -> bytes:
    """RFC 2986: CertificationRequest over CertificationRequestInfo {version 0, subject CN=serial, SPKI, attributes [0] {}}."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)]).public_bytes()
    info = der(0x30, der(0x02, b"\x00") + name + spki_der + der(0xA0, b""))
    signature = sign(info)
    return der(0x30, info + ECDSA_WITH_SHA256 + der(0x03, b"\x00" + signature))


# --- the TPM, through ESAPI ---

class Tpm:
    def __init__(self, tcti: str):
        self.esapi = ESAPI(tcti)
        self.loaded = []
        # The storage primary key: the same template gives the same key at every boot (TPM2_CreatePrimary).
        template = TPM2B_PUBLIC.parse("ecc256:aes128cfb", objectAttributes=STORAGE_ATTRIBUTES)
        self.primary = self.esapi.create_primary(TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.OWNER)[0]
        self.loaded.append(self.primary)

    def create_key(self, alg: str, attributes: int):
        template = TPM2B_PUBLIC.parse(alg, objectAttributes=attributes)
        # A signing key has no symmetric algorithm (Part 2, 12.2.3.6: TPM_ALG_NULL unless it is a restricted decryption key).
        template.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG.NULL
        private, public = self.esapi.create(self.primary, TPM2B_SENSITIVE_CREATE(), template)[:2]
        handle = self.esapi.load(self.primary, private, public)
        self.loaded.append(handle)
        return handle, public

    def persist(self, handle, persistent: int):
        return self.esapi.evict_control(ESYS_TR.OWNER, handle, persistent)

    def persistent(self, persistent: int):
        return self.esapi.tr_from_tpmpublic(persistent)

    def public(self, handle):
        return self.esapi.read_public(handle)[0]

    @staticmethod
    def ecdsa_der(signature) -> bytes:
        r = int.from_bytes(signature.signature.ecdsa.signatureR.marshal()[2:], "big")
        s = int.from_bytes(signature.signature.ecdsa.signatureS.marshal()[2:], "big")
        return encode_dss_signature(r, s)

    @staticmethod
    def scheme():
        scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
        scheme.details.any.hashAlg = TPM2_ALG.SHA256
        return scheme

    def hash_and_sign(self, key, data: bytes) -> bytes:
        """A restricted key signs only a digest the TPM made: TPM2_Hash gives the ticket TPM2_Sign checks."""
        digest, ticket = self.esapi.hash(data, TPM2_ALG.SHA256, ESYS_TR.OWNER)
        return self.ecdsa_der(self.esapi.sign(key, digest, self.scheme(), ticket))

    def sign_digest(self, key, digest: bytes) -> bytes:
        null_ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
        return self.ecdsa_der(self.esapi.sign(key, digest, self.scheme(), null_ticket))

    def certify(self, key, ak, qualifying_data: bytes):
        attest, signature = self.esapi.certify(key, ak, qualifying_data, self.scheme())
        return attest.marshal()[2:], signature.marshal()

    def close(self):
        for handle in reversed(self.loaded):
            try:
                self.esapi.flush_context(handle)
            except Exception:
                pass
        self.esapi.close()


def spki_of(public) -> bytes:
    return public.publicArea.to_der()


# --- HTTPS and ACME (RFC 8555) ---

class Http:
    def __init__(self, ca: str):
        self.context = ssl.create_default_context(cafile=ca)

    def request(self, method: str, url: str, body=None, headers=None):
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=30) as res:
                return res.status, dict(res.headers), res.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


class AcmeProblem(Exception):
    def __init__(self, status: int, problem: dict):
        super().__init__(f"{status} {problem.get('type')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


class Acme:
    def __init__(self, http: Http, directory_url: str):
        self.http = http
        status, _, body = http.request("GET", directory_url)
        assert status == 200, body
        self.directory = json.loads(body)
        self.key = jwk.JWK.generate(kty="EC", crv="P-256")
        self.kid = None
        self.nonce = None

    def thumbprint(self) -> str:
        return self.key.thumbprint()  # RFC 7638, SHA-256, base64url

    def fresh_nonce(self) -> str:
        if self.nonce is None:
            _, headers, _ = self.http.request("HEAD", self.directory["newNonce"])
            self.nonce = headers["Replay-Nonce"]
        nonce, self.nonce = self.nonce, None
        return nonce

    def post(self, url: str, payload, accept: str = "application/json"):
        """A JWS (RFC 8555 6.2): ES256, nonce, url, jwk before the account exists, kid after; payload "" is POST-as-GET."""
        protected = {"alg": "ES256", "nonce": self.fresh_nonce(), "url": url}
        if self.kid:
            protected["kid"] = self.kid
        else:
            protected["jwk"] = json.loads(self.key.export_public())
        body = b"" if payload == "" else json.dumps(payload).encode()
        signed = jws.JWS(body)
        signed.add_signature(self.key, alg="ES256", protected=json.dumps(protected))
        status, headers, answer = self.http.request("POST", url, signed.serialize(compact=False).encode(), {"Content-Type": "application/jose+json", "Accept": accept})
        self.nonce = headers.get("Replay-Nonce")
        if status >= 400:
            raise AcmeProblem(status, json.loads(answer))
        return status, headers, answer

    def new_account(self):
        _, headers, _ = self.post(self.directory["newAccount"], {"termsOfServiceAgreed": True})
        self.kid = headers["Location"]

    def new_order(self, serial: str, replaces=None):
        payload = {"identifiers": [{"type": "permanent-identifier", "value": serial}]}
        if replaces:
            payload["replaces"] = replaces
        _, headers, body = self.post(self.directory["newOrder"], payload)
        order = json.loads(body)
        authz = json.loads(self.post(order["authorizations"][0], "")[2])
        challenge = next(c for c in authz["challenges"] if c["type"] == "device-attest-01")
        return {"url": headers["Location"], "order": order, "challenge": challenge,
                "keyAuthorization": f"{challenge['token']}.{self.thumbprint()}"}


def cert_id(certificate: x509.Certificate) -> str:
    """RFC 9773 4.1: base64url(AKI keyIdentifier) "." base64url(DER contents of the serial INTEGER)."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    n = certificate.serial_number
    contents = n.to_bytes(n.bit_length() // 8 + 1, "big")  # two's complement, a leading zero when the top bit is set
    return f"{b64u(aki)}.{b64u(contents)}"


def tpm_attestation(tpm: Tpm, key, public, ak, birth_der: bytes, qualifying_data: bytes) -> bytes:
    """WebAuthn 8.3 as draft-ietf-acme-device-attest-09 uses it: no authData; certInfo's extraData is the qualifyingData."""
    cert_info, sig = tpm.certify(key, ak, qualifying_data)
    statement = {"ver": "2.0", "alg": -7, "x5c": [birth_der], "sig": sig, "certInfo": cert_info, "pubArea": public.publicArea.marshal()}
    return cbor2.dumps({"fmt": "tpm", "attStmt": statement})


def enroll_once(acme: Acme, tpm: Tpm, ak, birth_der: bytes, serial: str, replaces=None):
    opened = acme.new_order(serial, replaces)
    key, public = tpm.create_key("ecc256", KEY_ATTRIBUTES)
    attobj = tpm_attestation(tpm, key, public, ak, birth_der, sha256(opened["keyAuthorization"].encode()))
    acme.post(opened["challenge"]["url"], {"attObj": b64u(attobj)})
    request = csr(serial, spki_of(public), lambda tbs: tpm.sign_digest(key, sha256(tbs)))
    order = json.loads(acme.post(opened["order"]["finalize"], {"csr": b64u(request)})[2])
    for _ in range(40):
        if order["status"] != "processing":
            break
        time.sleep(0.25)
        order = json.loads(acme.post(opened["url"], "")[2])
    assert order["status"] == "valid", order
    chain = acme.post(order["certificate"], "", "application/pem-certificate-chain")[2]
    leaf = x509.load_pem_x509_certificate(chain)  # the first of the chain
    assert leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki_of(public)
    tpm.esapi.flush_context(key)
    tpm.loaded.remove(key)
    return leaf, order


def birth(args):
    tpm = Tpm(args.tcti)
    try:
        ak, public = tpm.create_key("ecc256:ecdsa-sha256", AK_ATTRIBUTES)
        tpm.persist(ak, AK_HANDLE)
        request = csr(args.serial, spki_of(public), lambda tbs: tpm.hash_and_sign(ak, tbs))
        loaded = x509.load_der_x509_csr(request)
        assert loaded.is_signature_valid, "the TPM's CSR signature does not verify"
        body = json.dumps({"serial": args.serial, "model": args.model, "batch": args.batch, "csr": b64u(request)}).encode()
        status, _, answer = Http(args.ca).request("POST", f"{args.base}/factory/v1/birth-certificates", body,
                                                  {"Authorization": f"Bearer {os.environ['DEVID_FACTORY_TOKEN']}", "Content-Type": "application/json"})
        assert status == 201, answer
        certificate = json.loads(answer)["certificate"]
        with open(os.path.join(args.state, "birth.pem"), "w") as f:
            f.write(certificate)
        born = x509.load_pem_x509_certificate(certificate.encode())
        return {"birthSerial": format(born.serial_number, "x"), "akHandle": hex(AK_HANDLE)}
    finally:
        tpm.close()


def enroll(args):
    tpm = Tpm(args.tcti)
    try:
        ak = tpm.persistent(AK_HANDLE)
        with open(os.path.join(args.state, "birth.pem"), "rb") as f:
            birth_der = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
        acme = Acme(Http(args.ca), f"{args.base}/acme/directory")
        acme.new_account()
        first, _ = enroll_once(acme, tpm, ak, birth_der, args.serial)
        replaces = cert_id(first)
        second, order = enroll_once(acme, tpm, ak, birth_der, args.serial, replaces)
        assert order.get("replaces") == replaces, order
        # A forgery: the attestation for one challenge carries the extraData of another.
        one = acme.new_order(args.serial)
        other = acme.new_order(args.serial)
        key, public = tpm.create_key("ecc256", KEY_ATTRIBUTES)
        forged = tpm_attestation(tpm, key, public, ak, birth_der, sha256(one["keyAuthorization"].encode()))
        try:
            acme.post(other["challenge"]["url"], {"attObj": b64u(forged)})
            refusal = None
        except AcmeProblem as problem:
            refusal = {"status": problem.status, **problem.problem}
        digest = lambda c: hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()
        return {
            "first": {"serial": format(first.serial_number, "x"), "sha256": digest(first)},
            "second": {"serial": format(second.serial_number, "x"), "sha256": digest(second), "replaces": replaces},
            "forged": refusal,
        }
    finally:
        tpm.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["birth", "enroll"])
    for option in ["--tcti", "--base", "--ca", "--state", "--serial"]:
        parser.add_argument(option, required=True)
    parser.add_argument("--model")
    parser.add_argument("--batch")
    args = parser.parse_args()
    result = birth(args) if args.phase == "birth" else enroll(args)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
