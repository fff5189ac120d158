#!/bin/bash
# counts SQL statements per step of a device's life against a PGlite server
set -e
cd /work/main
D=$(mktemp -d); export DEVID_DATA_DIR=$D/var PATH=/work/main/bin:$PATH
DEBUG=knex:query devid-ca serve --init-if-empty > $D/server.log 2>&1 &
SP=$!
for i in $(seq 1 120); do curl -sf http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 1; done
cd $D
for ca in root factory operational; do curl -sf http://127.0.0.1:8080/ca/$ca.crt | openssl x509 -inform DER -out $ca.pem; done
OPERATOR=$(devid-ca token create --role operator --name alice)
FACTORY=$(devid-ca token create --role factory --name line-1-robot --line line-1)
curl -sf --cacert root.pem -X PUT https://localhost:8443/operator/v1/models/thermo-2 -H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' -d '{"hwType": "1.3.6.1.4.1.99999.1.2", "manufacturer": "Acme Devices"}' >/dev/null
mark() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $1" >> $D/marks; }
sleep 1.5
for n in 1 2; do
devid-device --dir dev$n init --serial SN-00077$n --ca root.pem --acme https://localhost:8443/acme/directory >/dev/null
sleep 1.5; mark birth$n
DEVID_FACTORY_TOKEN=$FACTORY devid-device --dir dev$n birth --factory https://localhost:8443 --model thermo-2 --batch 2026-11-A >/dev/null
sleep 0.5; mark enroll$n
devid-device --dir dev$n enroll >/dev/null
sleep 0.5; mark renew$n
devid-device --dir dev$n renew --now >/dev/null
sleep 0.5; mark end$n
done
kill $SP; wait $SP || true
grep -v '^\s*$' $D/server.log | sed 's/\x1b\[[0-9;]*m//g' > $D/clean.log
python3 /work/main/.scratch/bucket.py $D/marks $D/clean.log
echo "log: $D/clean.log"
