/**
 * A fixed set of PKCS#11 sessions handed out one caller at a time, so that
 * concurrent signers never interleave operations on one session.
 */
export class SessionPool {
  private readonly free: Buffer[];
  private readonly waiters: Array<(session: Buffer) => void> = [];

  constructor(readonly sessions: readonly Buffer[]) {
    this.free = [...sessions];
  }

  async use<T>(work: (session: Buffer) => T): Promise<T> {
    const session = this.free.pop() ?? (await new Promise<Buffer>((resolve) => this.waiters.push(resolve)));
    try {
      return work(session);
    } finally {
      const next = this.waiters.shift();
      if (next) next(session);
      else this.free.push(session);
    }
  }
}
