import type { TLSSocket } from 'node:tls';
import { enrollWithCertificate } from '../../registry/enrollment/certificate-enrollment.ts';
import type { DeviceClassRecord } from '../../store/types.ts';
import { bindingProblem } from './channel-binding.ts';
import { certsOnly } from './cms.ts';
import { CHALLENGE_PASSWORD } from './csrattrs.ts';
import type { EstDeps } from './deps.ts';
import { EstError, domainEstError } from './errors.ts';

/** simpleenroll authenticates with the birth certificate, simplereenroll with the newest operational one. */
export type EnrollOperation = 'simpleenroll' | 'simplereenroll';

const classRefusal = (deviceClass: DeviceClassRecord) => (deviceClass.est ? undefined : `device class ${deviceClass.name} does not allow EST enrollment`);

/**
 * Who asks, before anything they send is read: a TLS 1.3 session with a
 * client certificate (its DER), else 403.
 */
export function clientCertificate(socket: TLSSocket, operation: EnrollOperation): Buffer {
  if (socket.getProtocol() !== 'TLSv1.3') throw new EstError(403, 'EST enrollment needs TLS 1.3 (the channel binding is tls-exporter, RFC 9266)');
  const client = socket.getPeerX509Certificate();
  if (!client) throw new EstError(403, `${operation} needs a TLS client certificate: the device's ${operation === 'simpleenroll' ? 'birth certificate' : 'newest operational certificate'}`);
  return client.raw;
}

/**
 * POST simpleenroll / simplereenroll (RFC 7030 4.2): a TLS 1.3 client
 * certificate, then the registration authority
 * (registry/enrollment/certificate-enrollment.ts) with the CSR, whose
 * binding to the session is this front end's check. The answer is
 * the new certificate as a certs-only CMS (4.2.3); a retry gets the
 * certificate already issued.
 */
export async function enroll(deps: EstDeps, socket: TLSSocket, operation: EnrollOperation, client: Buffer, der: Buffer, label: string | undefined): Promise<string> {
  const basis = operation === 'simpleenroll' ? 'birth' : 'operational';
  // The CSR is bound to this session (checked by the registration authority's call, so a refusal of a known device is audited).
  const outcome = await enrollWithCertificate({ ...deps, log: deps.logger }, {
    basis, certificate: client, csr: der.toString('base64url'), classRefusal, now: deps.clock(),
    frontEndAttributes: [CHALLENGE_PASSWORD], frontEndCheck: (csr) => bindingProblem(csr.request, socket),
    requester: { data: { protocol: 'est', operation } }, ...(label !== undefined ? { className: label } : {}),
  });
  if (!outcome.ok) throw domainEstError(outcome.error);
  return certsOnly([outcome.certificate.der]);
}
