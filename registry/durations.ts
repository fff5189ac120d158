const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `15m`, `24h`, `30d` in milliseconds; undefined for anything else. */
export function durationMs(raw: unknown): number | undefined {
  if (typeof raw !== 'string') return undefined;
  const match = /^(\d{1,6})([smhd])$/.exec(raw);
  return match ? Number(match[1]) * UNITS[match[2]!]! : undefined;
}

/** A duration as people write it back: the largest unit that divides it. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) if (ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}
