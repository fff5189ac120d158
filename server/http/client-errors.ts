import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { PROBLEM, Problem, problemDocument } from './problem.ts';

/**
 * Requests Node refuses before express sees them (headers over the limit,
 * a malformed request line) get a problem document too, not Node's bare
 * status line.
 */
export function answerClientErrors(server: HttpServer | HttpsServer): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const problem = err.code === 'HPE_HEADER_OVERFLOW'
      ? new Problem(431, PROBLEM.headersTooLarge, 'the request headers are larger than the server accepts')
      : new Problem(400, PROBLEM.malformed, 'the request is not valid HTTP');
    const body = JSON.stringify(problemDocument(problem));
    socket.end(`HTTP/1.1 ${problem.status} ${problem.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n`
      + `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
}
