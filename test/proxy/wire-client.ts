/**
 * A raw PostgreSQL protocol client for tests: it writes the bytes it is given (in as many TCP
 * writes as asked) and reads backend messages one by one, so tests can see exactly what a
 * server answered, in order.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { backendError, decodeParameterStatus } from '../../proxy/backend-decode.ts';
import { BackendCode, StartupCode } from '../../proxy/codes.ts';
import { type Frame, FrameReader } from '../../proxy/framing.ts';
import * as fe from '../../proxy/frontend-encode.ts';
import { MessageWriter } from '../../proxy/writer.ts';

export interface Startup {
  processId: number;
  secretKey: number;
  parameters: Map<string, string>;
  /** Every message before the first ReadyForQuery, that one included. */
  messages: Frame[];
}

export class WireClient {
  private readonly reader = new FrameReader();
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.reader.push(chunk)) this.frames.push(frame);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<WireClient> {
    const socket = netConnect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new WireClient(socket);
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** Writes `bytes`; with `chunk`, in pieces of that size, yielding to the event loop between. */
  async send(bytes: Buffer, chunk?: number): Promise<void> {
    if (chunk === undefined || bytes.length <= chunk) {
      this.socket.write(bytes);
      return;
    }
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      const piece = bytes.subarray(offset, offset + chunk);
      if (!this.socket.write(piece)) {
        await new Promise<void>((resolve) => this.socket.once('drain', resolve));
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  /** The next message, or undefined when none comes within `timeoutMs` or the socket closed. */
  async next(timeoutMs = 10_000): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames.shift();
  }

  /** Messages up to and including the `count`-th ReadyForQuery; throws on a timeout. */
  async untilReady(count = 1, timeoutMs = 30_000): Promise<Frame[]> {
    const out: Frame[] = [];
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    while (seen < count) {
      const frame = await this.next(deadline - Date.now());
      if (frame === undefined) {
        throw new Error(
          `no ReadyForQuery (${seen} of ${count}) ${this.closed ? 'before the connection closed' : `within ${timeoutMs} ms`}; got ${out.map((f) => String.fromCharCode(f.code)).join(' ')}`,
        );
      }
      out.push(frame);
      if (frame.code === BackendCode.ReadyForQuery) seen++;
    }
    return out;
  }

  /** Messages that arrive until none has come for `quietMs`. */
  async drain(quietMs = 300): Promise<Frame[]> {
    const out: Frame[] = [];
    while (true) {
      const frame = await this.next(quietMs);
      if (frame === undefined) return out;
      out.push(frame);
    }
  }

  /**
   * Startup as a driver does it: protocol 3.0 (or the given version), cleartext password if
   * asked, up to the first ReadyForQuery. Throws the server's error.
   */
  async startup(
    parameters: Record<string, string>,
    password?: string,
    version: number = StartupCode.Protocol3,
  ): Promise<Startup> {
    const w = new MessageWriter(256);
    w.begin(0).int32(version);
    for (const [name, value] of Object.entries(parameters)) w.cstring(name).cstring(value);
    w.int8(0).end();
    this.socket.write(w.take());
    const result: Startup = { processId: 0, secretKey: 0, parameters: new Map(), messages: [] };
    while (true) {
      const frame = await this.next();
      if (frame === undefined) throw new Error('the server closed the connection during startup');
      result.messages.push(frame);
      switch (frame.code) {
        case BackendCode.Authentication: {
          const kind = frame.body.readInt32BE(0);
          if (kind === 3)
            this.socket.write(fe.password(new MessageWriter(), password ?? '').take());
          else if (kind !== 0) throw new Error(`unsupported authentication request ${kind}`);
          break;
        }
        case BackendCode.ParameterStatus: {
          const [name, value] = decodeParameterStatus(frame.body);
          result.parameters.set(name, value);
          break;
        }
        case BackendCode.BackendKeyData:
          result.processId = frame.body.readInt32BE(0);
          result.secretKey = frame.body.readInt32BE(4);
          break;
        case BackendCode.ErrorResponse:
          throw backendError(frame.body);
        case BackendCode.ReadyForQuery:
          return result;
      }
    }
  }

  /** Sends Terminate and closes. */
  close(): void {
    if (this.closed) return;
    this.socket.end(fe.terminate(new MessageWriter(8)).take());
  }
}

/** Sends CancelRequest for a session on a new connection. */
export async function sendCancel(port: number, processId: number, secretKey: number) {
  const client = await WireClient.connect(port);
  const w = new MessageWriter(16);
  w.begin(0).int32(StartupCode.CancelRequest).int32(processId).int32(secretKey).end();
  client.socket.end(w.take());
}
