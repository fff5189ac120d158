import { SIGNAL_ACTIONS, signalReason } from './clone-signals.ts';

/**
 * A device's certificate lineage as a graph (the console's lineage view):
 * each certificate points at its predecessor by SHA-256, the birth
 * certificate at nothing. A certificate with two successors is a fork; the
 * database refuses a second successor, so forks show as refused attempts
 * (device.lineage-fork events) and clone signals, placed on the certificate
 * they tried to replace when the event names it.
 */
export interface LineageInput {
  certificates: ReadonlyArray<{ serial: string; kind: string; sha256: string; predecessorSha256: string | null; notBefore: string; revokedAt: string | null }>;
  events: ReadonlyArray<{ seq: number; at: string; action: string; data: Record<string, unknown> }>;
}

export interface Lineage {
  nodes: Array<{ serial: string; kind: string; sha256: string; predecessor: string | null; issuedAt: string; revoked: boolean; successors: number }>;
  /** SHA-256 of every certificate with more than one successor. */
  forks: string[];
  /** Refused successors and clone signals, on the certificate they named (by SHA-256) or on none. */
  refused: Array<{ seq: number; at: string; action: string; on: string | null; reason: string }>;
}

const REFUSALS = new Set<string>(SIGNAL_ACTIONS);

export function lineageOf({ certificates, events }: LineageInput): Lineage {
  const successors = new Map<string, number>();
  for (const c of certificates) if (c.predecessorSha256) successors.set(c.predecessorSha256, (successors.get(c.predecessorSha256) ?? 0) + 1);
  const bySerial = new Map(certificates.map((c) => [c.serial, c.sha256]));
  const refused = events.filter((e) => REFUSALS.has(e.action)).map((e) => {
    const named = typeof e.data.replaces === 'string' ? e.data.replaces : undefined;
    return { seq: e.seq, at: e.at, action: e.action, on: (named && bySerial.get(named)) ?? null, reason: signalReason(e.data) };
  });
  return {
    nodes: certificates.map((c) => ({
      serial: c.serial, kind: c.kind, sha256: c.sha256, predecessor: c.predecessorSha256, issuedAt: c.notBefore,
      revoked: c.revokedAt !== null, successors: successors.get(c.sha256) ?? 0,
    })),
    forks: [...successors].filter(([, n]) => n > 1).map(([sha]) => sha),
    refused,
  };
}
