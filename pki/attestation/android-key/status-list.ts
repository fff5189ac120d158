/**
 * Google's Android attestation status list: the attestation certificates
 * (keys, intermediates) Google revoked or suspended, as JSON
 * {"entries": {"<certificate serial, lowercase hex>": {"status": "REVOKED" | "SUSPENDED", "reason"?, ...}}}.
 * Kept in memory and read again when older than an hour; a list older than
 * a day (none read, or every read since failed) refuses every android-key
 * attestation: without it a revoked chain would pass.
 */
export const GOOGLE_STATUS_URL = 'https://android.googleapis.com/attestation/status';

const REFRESH_AFTER_MS = 3_600_000;
const MAX_AGE_MS = 86_400_000;
const FETCH_TIMEOUT_MS = 5_000;
/** After a failed read, attestations do not wait for another one for this long: each would hold its device's lock up to the timeout. */
const RETRY_AFTER_FAILURE_MS = 60_000;
/** The published list is a few hundred KiB; a larger answer is not the list. */
const MAX_BYTES = 8 * 1024 * 1024;

interface StatusEntries {
  /** Serial (hex, no leading zeros) to its status. */
  statuses: Map<string, string>;
  readAt: Date;
}

/** Certificate serials compared as hex digits without leading zeros (the list writes Python's format(serial, 'x')). */
export const statusKey = (hex: string) => hex.toLowerCase().replace(/^0+(?=[0-9a-f])/, '');

/** The list's JSON, checked: an Error saying what is wrong when it is not the list. */
export function parseStatusList(text: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('the status list is not JSON');
  }
  const entries = (json as { entries?: unknown } | null)?.entries;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) throw new Error('the status list is not {"entries": {...}}');
  const statuses = new Map<string, string>();
  for (const [serial, entry] of Object.entries(entries)) {
    const status = (entry as { status?: unknown } | null)?.status;
    if (!/^[0-9a-fA-F]{1,64}$/.test(serial) || typeof status !== 'string' || status.length > 64) throw new Error(`the status list entry ${JSON.stringify(serial.slice(0, 80))} is not "<serial hex>": {"status": text}`);
    statuses.set(statusKey(serial), status);
  }
  return statuses;
}

export class AttestationStatusList {
  private entries?: StatusEntries;
  private lastError?: string;
  private failedAt?: Date;
  private reading?: Promise<void>;

  constructor(private url: string = GOOGLE_STATUS_URL) {}

  /** Where the list is read from (DEVID_ANDROID_STATUS_URL); what was read from elsewhere is forgotten. */
  configure(url: string): void {
    if (url === this.url) return;
    this.url = url;
    this.entries = undefined;
    this.lastError = undefined;
    this.failedAt = undefined;
  }

  /** Reads the list now; one read at a time. A failure keeps the list read before, and is told by problem(). */
  refresh(now: Date): Promise<void> {
    this.reading ??= this.read(now).finally(() => { this.reading = undefined; });
    return this.reading;
  }

  private async read(now: Date): Promise<void> {
    const url = this.url;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const length = Number(response.headers.get('content-length') ?? 0);
      if (length > MAX_BYTES) throw new Error(`${length} bytes is more than a status list`);
      const text = await response.text();
      if (text.length > MAX_BYTES) throw new Error(`${text.length} bytes is more than a status list`);
      const statuses = parseStatusList(text);
      if (url !== this.url) return;
      this.entries = { statuses, readAt: now };
      this.lastError = undefined;
      this.failedAt = undefined;
    } catch (err) {
      if (url !== this.url) return;
      this.lastError = `${url}: ${(err as Error).message}`;
      this.failedAt = now;
    }
  }

  /**
   * Why these certificate serials may not attest: one is listed, or no
   * list younger than a day could be read. Reads the list again first when
   * it is older than an hour (not within a minute of a failed read).
   */
  async problem(serialsHex: readonly string[], now: Date): Promise<string | undefined> {
    const due = !this.entries || now.getTime() - this.entries.readAt.getTime() >= REFRESH_AFTER_MS;
    const backingOff = this.failedAt !== undefined && now.getTime() - this.failedAt.getTime() < RETRY_AFTER_FAILURE_MS;
    if (due && !backingOff) await this.refresh(now);
    const entries = this.entries;
    if (!entries || now.getTime() - entries.readAt.getTime() >= MAX_AGE_MS) {
      const since = entries ? `the last one read is from ${entries.readAt.toISOString()}` : 'none has been read';
      return `the Android attestation status list is unavailable (${since}${this.lastError ? `; ${this.lastError}` : ''}): android-key attestations are refused until it can be read`;
    }
    for (const serial of serialsHex) {
      const status = entries.statuses.get(statusKey(serial));
      if (status !== undefined) return `the certificate with serial ${statusKey(serial)} of the chain is ${status} on the Android attestation status list`;
    }
    return undefined;
  }
}

/** The list the android-key format reads; the server points it at DEVID_ANDROID_STATUS_URL. */
export const ANDROID_STATUS_LIST = new AttestationStatusList();
