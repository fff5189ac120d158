import { certificatePem } from '../../ca/pem.ts';
import { accountOf, type AcmeHandler } from './context.ts';
import { acmeProblem } from './problems.ts';

/**
 * POST-as-GET /acme/cert/<serial> (RFC 8555 7.4.2): the certificate and the
 * operational intermediate that issued it, as application/pem-certificate-chain;
 * only for the account whose order it was.
 */
export const certificateGet: AcmeHandler = async (call) => {
  const { store, hierarchy } = call.deps;
  const serial = call.params.serial!;
  const order = await store.acme.orderOfCertificate(serial);
  const certificate = order?.accountId === accountOf(call).id ? await store.certificates.find(serial) : undefined;
  if (!certificate) throw acmeProblem.notFound('certificate');
  const issuer = hierarchy.byId(certificate.issuerId)!;
  return { status: 200, raw: { text: `${certificatePem(certificate.der)}\n${issuer.certificate.toString('pem')}\n`, contentType: 'application/pem-certificate-chain' } };
};
