import type { TLSSocket } from 'node:tls';
import { DomainError } from '../../errors/domain-error.ts';
import { verifyCsr } from '../../pki/csr.ts';
import { enrollWithCertificate } from '../../registry/enrollment/certificate-enrollment.ts';
import type { DeviceClassRecord } from '../../store/types.ts';
import { checkChannelBinding } from './channel-binding.ts';
import { certsOnly } from './cms.ts';
import { CHALLENGE_PASSWORD } from './csrattrs.ts';
import type { EstDeps } from './deps.ts';
import { EstError, domainEstError } from './errors.ts';

/** simpleenroll authenticates with the birth certificate, simplereenroll with the newest operational one. */
export type EnrollOperation = 'simpleenroll' | 'simplereenroll';

const classRefusal = (deviceClass: DeviceClassRecord) => (deviceClass.est ? undefined : `device class ${deviceClass.name} does not allow EST enrollment`);

/**
 * POST simpleenroll / simplereenroll (RFC 7030 4.2): a TLS 1.3 client
 * certificate, a CSR bound to the session, then the registration
 * authority (registry/enrollment/certificate-enrollment.ts). The answer is
 * the new certificate as a certs-only CMS (4.2.3); a retry gets the
 * certificate already issued.
 */
export async function enroll(deps: EstDeps, socket: TLSSocket, operation: EnrollOperation, der: Buffer, label: string | undefined): Promise<string> {
  if (socket.getProtocol() !== 'TLSv1.3') throw new EstError(403, 'EST enrollment needs TLS 1.3 (the channel binding is tls-exporter, RFC 9266)');
  const client = socket.getPeerX509Certificate();
  const basis = operation === 'simpleenroll' ? 'birth' : 'operational';
  if (!client) throw new EstError(403, `${operation} needs a TLS client certificate: the device's ${basis === 'birth' ? 'birth certificate' : 'newest operational certificate'}`);
  const csr = der.toString('base64url');
  let request;
  try {
    request = verifyCsr(csr).request;
  } catch (err) {
    if (err instanceof DomainError) throw new EstError(400, `bad CSR: ${err.detail}`);
    throw err;
  }
  // Before anything is looked up or written: a CSR not bound to this session proves nothing.
  checkChannelBinding(request, socket);
  const outcome = await enrollWithCertificate({ ...deps, log: deps.logger }, {
    basis, certificate: client.raw, csr, frontEndAttributes: [CHALLENGE_PASSWORD], classRefusal, now: deps.clock(),
    requester: { data: { protocol: 'est', operation } }, ...(label !== undefined ? { className: label } : {}),
  });
  if (!outcome.ok) throw domainEstError(outcome.error);
  return certsOnly([outcome.certificate.der]);
}
