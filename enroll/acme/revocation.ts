import { sha256Hex } from '../../ca/digest.ts';
import { DomainError } from '../../errors/domain-error.ts';
import { checkReason } from '../../registry/lifecycle/revocation.ts';
import type { AcmeHandler } from './context.ts';
import { jsonPayload } from './jws.ts';
import { AcmeProblem, acmeProblem } from './problems.ts';

/**
 * POST /acme/revoke-cert (RFC 8555 7.6): signed by the account whose order
 * issued the certificate (kid), or by the certificate's own key (jwk).
 * Devices revoke their operational certificates only: a birth certificate
 * is revoked by an operator (docs/operators/lifecycle.md). Goes through the one
 * revocation path, audited.
 */
export const revokeCert: AcmeHandler = async (call) => {
  const { deps, jws } = call;
  const payload = jsonPayload(jws!);
  if (!payload || typeof payload.certificate !== 'string' || !/^[A-Za-z0-9_-]{1,8192}$/.test(payload.certificate)) {
    throw acmeProblem.malformed('revokeCert needs {"certificate": base64url DER}');
  }
  let reason;
  try {
    reason = checkReason(payload.reason ?? 0);
  } catch (err) {
    if (err instanceof DomainError) throw new AcmeProblem('badRevocationReason', 400, err.detail);
    throw err;
  }
  const certificate = await deps.store.certificates.bySha256(sha256Hex(Buffer.from(payload.certificate, 'base64url')));
  if (!certificate) throw acmeProblem.notFound('certificate issued by this CA');
  if (certificate.kind !== 'operational') throw acmeProblem.unauthorized(`a ${certificate.kind} certificate is revoked by an operator, not over ACME`);
  let actor: string;
  if (jws!.account) {
    const order = await deps.store.acme.orderOfCertificate(certificate.serial);
    if (order?.accountId !== jws!.account.id) throw acmeProblem.unauthorized('this account did not order the certificate');
    actor = `acme:${jws!.account.id}`;
  } else {
    if (sha256Hex(jws!.jwk!.checked.spki) !== certificate.keySha256) throw acmeProblem.unauthorized('the JWS is not signed by the certificate\'s key');
    actor = `device:${certificate.deviceSerial}`;
  }
  const { revokedNow } = await deps.revocations.certificate(certificate.serial, reason, actor);
  if (!revokedNow) throw new AcmeProblem('alreadyRevoked', 400, `certificate ${certificate.serial} is already revoked`);
  return { status: 200 };
};
