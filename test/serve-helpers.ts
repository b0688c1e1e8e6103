// Helpers shared by the playground's tests (serve.test.ts, serve-fuzz.test.ts).
import { request } from 'node:http';

/** A raw HTTP request (fetch() will not forge Host or send a bad body); status, headers and body. */
export function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    // A fresh connection each time: a kept-alive socket that the server closed after a refused body would fail the next request.
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

