import type { AcmeHandler } from './context.ts';

/** GET /acme/directory (RFC 8555 7.1.1, RFC 9773 renewalInfo). */
export const directory: AcmeHandler = async ({ urls }) => ({
  status: 200,
  body: {
    newNonce: urls.newNonce,
    newAccount: urls.newAccount,
    newOrder: urls.newOrder,
    revokeCert: urls.revokeCert,
    keyChange: urls.keyChange,
    renewalInfo: urls.renewalInfo,
    meta: {
      // The device's attestation authorizes each order; accounts need no external binding (docs/device-makers/protocol.md).
      externalAccountRequired: false,
    },
  },
});
