#!/usr/bin/env bash
# Installs what devid-ca needs on a Debian machine, then the npm packages.
#   scripts/setup.sh          SoftHSM2, OpenSC, OpenSSL, jq, npm packages, the compiled CLIs in build/ (to run the CA)
#   scripts/setup.sh --test   also docker-compose, chromium, swtpm and tpm2-tools, Go with golang.org/x/mod (outside EST and Merkle log verifiers), python3-cbor2, python3-cryptography, python3-tpm2-pytss and python3-jwcrypto, and a PostgreSQL answering on 127.0.0.1:5432
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=false
apt_install() {
  if ! $apt_updated; then as_root apt-get update -qq; apt_updated=true; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
[ -n "$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null)" ] || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null || missing+=(opensc)
command -v openssl >/dev/null || missing+=(openssl)
command -v jq >/dev/null || missing+=(jq)
command -v flock >/dev/null || missing+=(util-linux)
if $want_test; then
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  # The console's browser tests drive Debian's chromium (nothing downloads a browser).
  [ -x "${DEVID_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
  # The tpm attestation format is tested against a software TPM (swtpm) driven by tpm2-tools.
  command -v swtpm >/dev/null || missing+=(swtpm)
  command -v swtpm_setup >/dev/null || missing+=(swtpm-tools)
  command -v tpm2_certify >/dev/null || missing+=(tpm2-tools)
  # test/est-outside.test.ts builds a Go EST client from the standard library as an outside peer.
  command -v go >/dev/null || missing+=(golang-go)
  # The Merkle log's outside verifier (test/tlog-log.test.ts): Go's sumdb/note and sumdb/tlog, built offline.
  [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ] || missing+=(golang-golang-x-mod-dev)
  # Signed firmware manifests are checked by an outside verifier in Python (test/support/suit_verify.py), with Debian's packages.
  /usr/bin/python3 -c 'import cbor2' 2>/dev/null || missing+=(python3-cbor2)
  /usr/bin/python3 -c 'import cryptography' 2>/dev/null || missing+=(python3-cryptography)
  # The outside TPM device (test/support/outside-tpm-device.py) and the TPM2_Certify marshaller's check use the TSS's Python bindings; ACME's JWS by jwcrypto.
  /usr/bin/python3 -c 'import tpm2_pytss' 2>/dev/null || missing+=(python3-tpm2-pytss)
  /usr/bin/python3 -c 'import jwcrypto' 2>/dev/null || missing+=(python3-jwcrypto)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

if $want_test && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "setup: installing PostgreSQL"
    apt_install postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    # The tests connect as postgres over loopback without a password.
    echo "host all postgres 127.0.0.1/32 trust" | as_root tee -a "/etc/postgresql/$version/main/pg_hba.conf" >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "setup: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || ! node -e "require('pkcs11js')" 2>/dev/null; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
node -e "require('pkcs11js')" || { echo "setup: pkcs11js did not build (npm ci must run its node-gyp install script)" >&2; exit 1; }

# bin/devid-ca and bin/devid-device run the JavaScript tsc writes to build/ (incremental: quick when it is current).
echo "setup: npm run build"
npm run build --silent
