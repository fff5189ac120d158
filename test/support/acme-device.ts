import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AcmeClient, AcmeError } from '../../client/acme-client.ts';
import { Device, type EnrollOptions } from '../../client/device.ts';
import { fileFactoryKey } from '../../client/factory-key.ts';
import type { TestServer } from './api.ts';

/** The test servers' public host name, resolved to loopback for the device. */
export const PUBLIC_HOST = 'ca.devid.test';
export const toLoopback: LookupFunction = (_host, options, callback) => {
  if ((options as { all?: boolean }).all) (callback as unknown as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

export function directoryUrl(server: TestServer): string {
  return `https://${PUBLIC_HOST}:${server.running.httpsPort}/acme/directory`;
}

/** A device with a factory key in a file and a birth certificate from the test server's factory line. */
export async function makeDevice(server: TestServer, serial: string, model = 'thermo-2', batch = 'b1'): Promise<Device> {
  const dir = mkdtempSync(join(tmpdir(), 'devid-test-device-'));
  const keyPath = join(dir, 'factory-key.pem');
  writeFileSync(keyPath, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const factoryKey = await fileFactoryKey(keyPath);
  const birth = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial, model, batch, csr: await factoryKey.csr() } });
  if (birth.status !== 201) throw new Error(`birth certificate refused: ${birth.text}`);
  writeFileSync(join(dir, 'birth.pem'), birth.json.certificate);
  const acme = new AcmeClient(directoryUrl(server), Device.accountKey(dir), server.rootPem, toLoopback);
  return new Device(serial, dir, factoryKey, acme, PUBLIC_HOST);
}

/** An enrollment the CA must refuse with ACME problem `type` (and a detail matching `detail`); the device keeps its files. */
export async function refused(device: Device, options: EnrollOptions, type: string, detail?: RegExp): Promise<AcmeError> {
  const err = await device.enroll({ keepFiles: true, ...options }).catch((e: unknown) => e);
  expect(err, `expected ${type}`).to.be.instanceOf(AcmeError);
  const problem = (err as AcmeError).problem!;
  expect(problem.type, JSON.stringify(problem)).to.equal(`urn:ietf:params:acme:error:${type}`);
  if (detail) expect(problem.detail).to.match(detail);
  return err as AcmeError;
}
