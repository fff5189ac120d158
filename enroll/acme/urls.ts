/**
 * The URLs of the ACME resources, relative to the host the client used (as
 * Boulder does), so that the JWS `url` header can be checked against the
 * request's own URL (RFC 8555 6.4).
 */
export class AcmeUrls {
  constructor(readonly base: string) {}

  get directory(): string { return `${this.base}/acme/directory`; }
  get newNonce(): string { return `${this.base}/acme/new-nonce`; }
  get newAccount(): string { return `${this.base}/acme/new-account`; }
  get newOrder(): string { return `${this.base}/acme/new-order`; }
  get revokeCert(): string { return `${this.base}/acme/revoke-cert`; }
  get keyChange(): string { return `${this.base}/acme/key-change`; }
  get renewalInfo(): string { return `${this.base}/acme/renewal-info`; }
  account(id: string): string { return `${this.base}/acme/acct/${id}`; }
  orders(accountId: string): string { return `${this.base}/acme/acct/${accountId}/orders`; }
  order(id: string): string { return `${this.base}/acme/order/${id}`; }
  finalize(id: string): string { return `${this.base}/acme/order/${id}/finalize`; }
  authorization(id: string): string { return `${this.base}/acme/authz/${id}`; }
  challenge(id: string): string { return `${this.base}/acme/chall/${id}`; }
  certificate(serial: string): string { return `${this.base}/acme/cert/${serial}`; }

  /** The account id a `kid` names, or undefined when it is not one of our account URLs. */
  accountId(kid: string): string | undefined {
    const prefix = `${this.base}/acme/acct/`;
    if (!kid.startsWith(prefix)) return undefined;
    const id = kid.slice(prefix.length);
    return /^[A-Za-z0-9_-]{22}$/.test(id) ? id : undefined;
  }
}
