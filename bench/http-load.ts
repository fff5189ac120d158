import { connect, type Socket } from 'node:net';

/**
 * A small HTTP/1.1 load generator over raw sockets: cheaper per request
 * than node:http's client, so that on two cores the server, not the
 * client, is what is measured. Each connection sends one prepared request
 * at a time and reads the answer by its Content-Length.
 */
export interface LoadOptions {
  port: number;
  /** Whole HTTP requests, sent in turn. */
  requests: readonly Buffer[];
  connections: number;
  /** true: one connection per caller for the whole run; false: a new connection per request. */
  keepAlive: boolean;
  ms: number;
  /** Stop after this many requests (a warm-up pass over every request once). */
  count?: number;
}

export interface LoadResult {
  rate: number;
  errors: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Resolves with the status of each response as it completes (keep-alive), one at a time. */
class ResponseReader {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting?: (status: number) => void;

  constructor(socket: Socket, onClose: () => void) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.drain();
    });
    socket.on('close', onClose);
    socket.on('error', () => {});
  }

  next(): Promise<number> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.drain();
    });
  }

  private drain(): void {
    if (!this.waiting) return;
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buffer.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buffer.length < end + 4 + length) return;
    this.buffer = this.buffer.subarray(end + 4 + length);
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve(Number(head.slice(9, 12)));
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  let done = 0;
  let errors = 0;
  let turn = 0;
  const started = performance.now();
  const deadline = started + options.ms;
  const nextRequest = () => options.requests[turn++ % options.requests.length]!;
  const more = () => performance.now() < deadline && (options.count === undefined || turn < options.count);
  await Promise.all(Array.from({ length: options.connections }, async () => {
    if (options.keepAlive) {
      let closed = false;
      const socket = await open(options.port);
      const reader = new ResponseReader(socket, () => { closed = true; });
      while (more() && !closed) {
        socket.write(nextRequest());
        const status = await reader.next();
        if (status === 200) done += 1;
        else errors += 1;
      }
      socket.destroy();
      return;
    }
    while (more()) {
      try {
        const socket = await open(options.port);
        const status = await new Promise<number>((resolve) => {
          const reader = new ResponseReader(socket, () => resolve(0));
          reader.next().then(resolve);
          socket.write(nextRequest());
        });
        socket.destroy();
        if (status === 200) done += 1;
        else errors += 1;
      } catch {
        errors += 1;
      }
    }
  }));
  return { rate: done / ((performance.now() - started) / 1000), errors };
}

/** A GET or POST as raw bytes; `close` asks the server to close after answering. */
export function rawRequest(method: 'GET' | 'POST', path: string, body?: Buffer, close = false): Buffer {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  if (body) head.push('Content-Type: application/ocsp-request', `Content-Length: ${body.length}`);
  if (close) head.push('Connection: close');
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

/** The INTEGER contents of a positive serial given in hex: a 0x00 in front when the top bit is set. */
export function integerContents(serialHex: string): Buffer {
  const bytes = Buffer.from(serialHex, 'hex');
  return bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}
