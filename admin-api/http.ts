/** Reading JSON requests and writing JSON responses on node:http. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

const tooLarge = (): HttpError =>
  new HttpError(413, `the request body is larger than 1 MiB (${MAX_BODY_BYTES} bytes)`, {
    // The rest of the body is not read, so the connection cannot carry another request.
    headers: { connection: 'close' },
  });

/**
 * The raw body, refused with 413 past the limit: at once when Content-Length says so, else as
 * soon as the bytes received pass it. The unread rest is left on a connection that closes.
 */
export function readBody(request: IncomingMessage): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (declared > MAX_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        stop();
        request.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      stop();
      reject(error);
    };
    const stop = (): void => {
      request.off('data', onData).off('end', onEnd).off('error', onError);
    };
    request.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

/**
 * The body as JSON; `undefined` when there is none. Invalid JSON is a 400 that says where.
 */
export function parseJson(raw: Buffer): unknown {
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new HttpError(400, `invalid JSON body: ${reason}`);
  }
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // Responses carry tokens and audited SQL: no cache keeps them.
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}
