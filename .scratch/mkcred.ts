import { readFileSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { makeCredential } from '../pki/attestation/tpm/make-credential.ts';
const ekPem = readFileSync('/tmp/tpmx/ek.pem');
const name = readFileSync('/tmp/tpmx/ak.name');
const made = makeCredential(createPublicKey(ekPem), name, Buffer.from('0123456789abcdef0123456789abcdef'));
writeFileSync('/tmp/tpmx/ours.out', Buffer.concat([Buffer.from('badcc0de00000001', 'hex'), made.credentialBlob, made.encryptedSecret]));
