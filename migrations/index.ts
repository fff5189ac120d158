import type { Knex } from 'knex';
import * as foundation from './001_foundation.ts';
import * as factory from './002_factory.ts';
import * as reprovision from './003_reprovision.ts';
import * as issuerIdentity from './004_issuer_identity.ts';
import * as acme from './005_acme.ts';
import * as revocation from './006_revocation.ts';
import * as lifecycle from './007_lifecycle.ts';
import * as support from './008_support.ts';
import * as consoleSessions from './009_console.ts';
import * as auditPending from './010_audit_pending.ts';
import * as manufacturers from './011_manufacturers.ts';
import * as enrollmentHardening from './012_enrollment_hardening.ts';
import * as ocspResponders from './013_ocsp_responders.ts';
import * as attestationFormats from './014_attestation_formats.ts';
import * as est from './015_est.ts';
import * as claimsBySerial from './016_claims_by_serial.ts';
import * as tlog from './017_tlog.ts';
import * as firmwareReleases from './018_firmware_releases.ts';
import * as firmwareUpdatePath from './019_firmware_update_path.ts';
import * as tpmActivations from './020_tpm_activations.ts';
import * as crlShards from './021_crl_shards.ts';
import * as orderIdentifiers from './022_order_identifiers.ts';
import * as gateways from './023_gateways.ts';
import * as estNonces from './024_est_nonces.ts';
import * as tlogWitnesses from './025_tlog_witnesses.ts';
import * as firmwarePolicies from './026_firmware_policies.ts';
import * as fleetCounters from './027_fleet_counters.ts';

/** Every schema step in order; knex records each by name once applied. */
export const MIGRATIONS: ReadonlyArray<[string, Knex.Migration]> = [
  ['001_foundation', foundation],
  ['002_factory', factory],
  ['003_reprovision', reprovision],
  ['004_issuer_identity', issuerIdentity],
  ['005_acme', acme],
  ['006_revocation', revocation],
  ['007_lifecycle', lifecycle],
  ['008_support', support],
  ['009_console', consoleSessions],
  ['010_audit_pending', auditPending],
  ['011_manufacturers', manufacturers],
  ['012_enrollment_hardening', enrollmentHardening],
  ['013_ocsp_responders', ocspResponders],
  ['014_attestation_formats', attestationFormats],
  ['015_est', est],
  ['016_claims_by_serial', claimsBySerial],
  ['017_tlog', tlog],
  ['018_firmware_releases', firmwareReleases],
  ['019_firmware_update_path', firmwareUpdatePath],
  ['020_tpm_activations', tpmActivations],
  ['021_crl_shards', crlShards],
  ['022_order_identifiers', orderIdentifiers],
  ['023_gateways', gateways],
  ['024_est_nonces', estNonces],
  ['025_tlog_witnesses', tlogWitnesses],
  ['026_firmware_policies', firmwarePolicies],
  ['027_fleet_counters', fleetCounters],
];
