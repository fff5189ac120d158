import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ParsedVerifierKey } from '../../registry/tlog/signed-note.ts';
import { addCheckpoint, type WitnessKey, type WitnessedHead } from '../../registry/tlog/witness.ts';
import type { ListenAddress } from '../config.ts';
import { lockWitnessState, readWitnessState, writeWitnessState } from './witness-files.ts';

/** An add-checkpoint body: 63 proof lines and a checkpoint with a few signatures fit many times over. */
const MAX_BODY = 64 * 1024;

export interface WitnessOptions {
  key: WitnessKey;
  /** The logs this witness cosigns, by origin, each with its trusted keys. */
  logs: ReadonlyMap<string, readonly ParsedVerifierKey[]>;
  statePath: string;
  listen: ListenAddress;
  clock: () => Date;
  /** Told each refused submission with a valid log signature: possible evidence of a forking log. */
  onRefusal?: (status: number, reason: string, body: string) => void;
}

export interface RunningWitness {
  port: number;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_BODY) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * `devid-ca witness serve`: a C2SP tlog-witness anyone can run beside a log
 * they do not control. POST /add-checkpoint only; one request at a time, so
 * checking the old size and persisting the new head is atomic as the spec
 * requires, and the head is on disk before the cosignature leaves.
 */
export async function startWitness(options: WitnessOptions): Promise<RunningWitness> {
  const unlock = lockWitnessState(options.statePath);
  let heads: Map<string, WitnessedHead>;
  try {
    heads = readWitnessState(options.statePath);
  } catch (err) {
    unlock();
    throw err;
  }
  let queue: Promise<void> = Promise.resolve();
  const answer = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' }).end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/add-checkpoint') return answer(res, 404, 'text/plain; charset=utf-8', 'this witness answers POST /add-checkpoint\n');
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return answer(res, 405, 'text/plain; charset=utf-8', 'POST only\n');
    }
    const body = await readBody(req);
    if (body === undefined) return answer(res, 413, 'text/plain; charset=utf-8', `the body is over ${MAX_BODY} bytes\n`);
    // Decided and persisted one at a time: no two requests check against the same old head.
    const done = queue.then(async () => {
      const result = addCheckpoint(body, options.logs, heads, options.key, Math.floor(options.clock().getTime() / 1000));
      if (result.head) {
        const next = new Map(heads).set(result.head.origin, result.head.head);
        await writeWitnessState(options.statePath, next);
        heads = next;
      } else if (result.status === 409 || result.status === 422) {
        options.onRefusal?.(result.status, result.body.trim(), body);
      }
      answer(res, result.status, result.type, result.body);
    });
    queue = done.catch(() => {});
    await done;
  };
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) answer(res, 500, 'text/plain; charset=utf-8', 'the witness could not record its state\n');
      else res.destroy();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => resolve());
    });
  } catch (err) {
    unlock();
    throw err;
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => {
      server.close(() => {
        unlock();
        resolve();
      });
      server.closeAllConnections();
    }),
  };
}
