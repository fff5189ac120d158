/**
 * A set of PKCS#11 sessions handed out one caller at a time, so that
 * concurrent signers never interleave operations on one session. The whole
 * set is replaced when the token loses its sessions (see Pkcs11KeyProvider).
 */
export class SessionPool {
  private current: readonly Buffer[];
  private free: Buffer[];
  private readonly waiters: Array<(session: Buffer) => void> = [];

  constructor(sessions: readonly Buffer[]) {
    this.current = sessions;
    this.free = [...sessions];
  }

  get sessions(): readonly Buffer[] {
    return this.current;
  }

  async use<T>(work: (session: Buffer) => T): Promise<T> {
    const session = this.free.pop() ?? (await new Promise<Buffer>((resolve) => this.waiters.push(resolve)));
    try {
      return work(session);
    } finally {
      this.release(session);
    }
  }

  /** Swaps in freshly opened sessions; a session of the old set is dropped when it comes back. */
  replace(sessions: readonly Buffer[]): void {
    this.current = sessions;
    this.free = [...sessions];
    while (this.waiters.length > 0 && this.free.length > 0) this.waiters.shift()!(this.free.pop()!);
  }

  private release(session: Buffer): void {
    if (!this.current.includes(session)) return;
    const next = this.waiters.shift();
    if (next) next(session);
    else this.free.push(session);
  }
}
