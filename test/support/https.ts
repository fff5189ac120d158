import { request } from 'node:https';
import { checkAnswer } from './openapi.ts';

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/**
 * One HTTPS request to a test server on loopback, sent exactly as given
 * (headers and raw body), on a connection of its own: a kept-alive one can be
 * closed by the server's idle timeout just as the next request goes out.
 */
export function httpsRequest(port: number, ca: string, method: string, path: string, headers: Record<string, string>, body?: string | Buffer, servername = 'ca.devid.test'): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername, port, method, path, headers, ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        try {
          resolve(checkAnswer(method, path, { status: res.statusCode!, headers: res.headers, text, json }, body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    // A test fails rather than hangs when an answer never comes (the server's own request timeout is 30 s).
    req.setTimeout(40_000, () => req.destroy(new Error(`no answer to ${method} ${path} within 40 s`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The same with a bearer token and a JSON body. */
export function httpsJson(port: number, ca: string, method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<ApiResponse> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return httpsRequest(port, ca, method, path, headers, body);
}
