/** Names of the advisory locks that serialise work across server processes. */
export const LOCKS = {
  /** Appends from every process on one PostgreSQL form a single audit chain. */
  auditChain: 'devid-audit-chain',
  /** One checkpoint per chain head, whichever node signs it. */
  checkpoint: 'devid-audit-checkpoint',
  /** One process at a time extends the Merkle log's tiles and signs its checkpoint. */
  tlog: 'devid-tlog',
  /** Nodes starting together create one hierarchy; a rollover runs alone. */
  ceremony: 'devid-ceremony',
  /** One process at a time builds an issuer's CRL; the others serve the newest. */
  crl: (issuerId: number) => `crl:${issuerId}`,
  /** One process at a time makes an issuer's next OCSP responder. */
  ocspResponder: (issuerId: number) => `ocsp-responder:${issuerId}`,
  /** One process at a time works through a compromised batch. */
  batch: (batch: string) => `batch:${batch}`,
  /** Concurrent requests for one serial see each other's result. */
  device: (serial: string) => `device:${serial}`,
} as const;
