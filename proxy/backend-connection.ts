import { connect as netConnect, Socket } from 'node:net';
import type { BackendConfig } from '../src/config/types.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import { backendError, decodeParameterStatus } from './backend-decode.ts';
import { Auth, BackendCode, FrontendCode, type TransactionStatus } from './codes.ts';
import { type Frame, FrameReader } from './framing.ts';
import * as fe from './frontend-encode.ts';
import { type Collected, collect, collected } from './results.ts';
import { md5Password, ScramClient } from './scram.ts';
import { MessageWriter } from './writer.ts';

/**
 * Receives the messages of one request, in order. Returns true on the message that ends the
 * request (usually ReadyForQuery); the next consumer in line gets the messages after it.
 */
export type Consumer = (frame: Frame) => boolean;

interface Pending {
  consumer: Consumer;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * One connection from the proxy to a PostgreSQL backend, pinned to one client session.
 * Requests are pipelined: each registers a consumer, and replies are handed to consumers in
 * the order the requests were written, as PostgreSQL answers them.
 */
export class BackendConnection {
  readonly parameters = new Map<string, string>();
  processId = 0;
  secretKey = 0;
  /** Transaction status from the last ReadyForQuery. */
  status: TransactionStatus = 'I';
  /** Prepared statements that exist on this connection: name to SQL text. */
  readonly statements = new Map<string, string>();
  /** Portals open on this connection (bound by the proxy for the client's Execute). */
  readonly portals = new Set<string>();
  /** Extended-protocol messages were sent since the last Sync. */
  unsynced = false;
  /** Set once the connection is gone; every later request fails with it. */
  failure: SqlError | undefined;
  /** When `failure` was set (performance.now()), so a later health check can be told apart. */
  failedAt = 0;
  /** The startup parameters it was opened with, to open an equal one again; undefined if unknown. */
  startup: Readonly<Record<string, string>> | undefined;
  /** Messages that arrive while no request is waiting (NoticeResponse, NotificationResponse). */
  onIdleMessage: ((frame: Frame) => void) | undefined;
  onClose: ((error: SqlError) => void) | undefined;

  private readonly reader = new FrameReader();
  private readonly queue: Pending[] = [];

  private constructor(
    readonly config: BackendConfig,
    private readonly socket: Socket,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(this.unavailable(error.message, error)));
    socket.on('close', () => this.fail(this.unavailable('connection closed')));
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * A connection that could not be made: every request fails with `error`. With the startup
   * parameters it was meant to have, a session can open it later (ClusterRuntime.reviveBackends).
   */
  static failed(
    config: BackendConfig,
    error: SqlError,
    startup?: Readonly<Record<string, string>>,
  ): BackendConnection {
    const connection = new BackendConnection(config, new Socket());
    connection.failure = error;
    connection.failedAt = performance.now();
    connection.startup = startup;
    return connection;
  }

  /** Connects, authenticates with the configured credentials and waits for ReadyForQuery. */
  static async connect(
    config: BackendConfig,
    parameters: Record<string, string>,
    timeoutMs = 10_000,
  ): Promise<BackendConnection> {
    const socket = netConnect({ host: config.host, port: config.port });
    const connection = new BackendConnection(config, socket);
    connection.startup = { ...parameters };
    const timer = setTimeout(
      () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      const w = new MessageWriter();
      fe.startup(w, { ...parameters, user: config.user, database: config.database });
      await connection.request(w.take(), connection.authenticator());
      return connection;
    } catch (error) {
      socket.destroy();
      throw error instanceof SqlError
        ? error
        : connection.unavailable(String((error as Error).message ?? error), error);
    } finally {
      clearTimeout(timer);
    }
  }

  private authenticator(): Consumer {
    let scram: ScramClient | undefined;
    const password = this.config.password ?? '';
    return (frame) => {
      if (frame.code === BackendCode.Authentication) {
        const kind = frame.body.readInt32BE(0);
        const w = new MessageWriter(128);
        if (kind === Auth.CleartextPassword) fe.password(w, password);
        else if (kind === Auth.MD5Password) {
          fe.password(w, md5Password(this.config.user, password, frame.body.subarray(4, 8)));
        } else if (kind === Auth.SASL) {
          const mechanisms = frame.body.subarray(4).toString().split('\0');
          if (!mechanisms.includes('SCRAM-SHA-256')) {
            throw this.unavailable(`offers no supported SASL mechanism (${mechanisms.join(', ')})`);
          }
          scram = new ScramClient(password);
          fe.saslInitial(w, 'SCRAM-SHA-256', scram.first());
        } else if (kind === Auth.SASLContinue && scram !== undefined) {
          fe.password(w, scram.final(frame.body.subarray(4).toString()));
        } else if (kind === Auth.SASLFinal && scram !== undefined) {
          scram.verify(frame.body.subarray(4).toString());
        } else if (kind !== Auth.Ok) {
          throw this.unavailable(`asks for an unsupported authentication method (${kind})`);
        }
        if (w.length > 0) this.socket.write(w.take());
        return false;
      }
      if (frame.code === BackendCode.BackendKeyData) {
        this.processId = frame.body.readInt32BE(0);
        this.secretKey = frame.body.readInt32BE(4);
      }
      return frame.code === BackendCode.ReadyForQuery;
    };
  }

  /** Stops reading replies (the client is not reading the ones already relayed). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Writes bytes that get no reply of their own (CopyData during COPY FROM STDIN). */
  forward(bytes: Buffer): void {
    if (this.failure === undefined) this.socket.write(bytes);
  }

  /** Writes a request and waits until each consumer has seen its final message. */
  request(bytes: Buffer, ...consumers: Consumer[]): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.notePortals(bytes);
    const done = consumers.map(
      (consumer) =>
        new Promise<void>((resolve, reject) => this.queue.push({ consumer, resolve, reject })),
    );
    this.socket.write(bytes);
    return Promise.all(done).then(() => undefined);
  }

  /**
   * Keeps `statements` and `portals` true to what the backend holds: a simple Query destroys the
   * unnamed statement and portal, and a Bind of the unnamed portal replaces it.
   */
  private notePortals(bytes: Buffer): void {
    let offset = 0;
    while (offset + 5 <= bytes.length) {
      const code = bytes[offset] as number;
      if (code === FrontendCode.Query) {
        this.statements.delete('');
        this.portals.delete('');
      } else if (code === FrontendCode.Bind && bytes[offset + 5] === 0) {
        this.portals.delete('');
      }
      offset += 1 + bytes.readInt32BE(offset + 1);
    }
  }

  /**
   * Adds a Sync (and a consumer for its ReadyForQuery) to `w` when extended-protocol messages
   * were sent since the last one, so that what follows starts a fresh exchange.
   */
  endExchange(w: MessageWriter, consumers: Consumer[]): void {
    if (!this.unsynced) return;
    fe.sync(w);
    consumers.push(collect(collected()));
    this.unsynced = false;
  }

  /**
   * Runs SQL with the simple query protocol and collects the reply; a backend error is in the
   * result, not thrown. Ends a pending extended-protocol exchange with Sync first.
   */
  async simple(sql: string): Promise<Collected> {
    const w = new MessageWriter(32 + sql.length);
    const consumers: Consumer[] = [];
    this.endExchange(w, consumers);
    fe.query(w, sql);
    const result = collected();
    consumers.push(collect(result));
    await this.request(w.take(), ...consumers);
    return result;
  }

  private receive(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.socket.destroy();
      this.fail(this.unavailable('sent an invalid message', error));
      return;
    }
    for (const frame of frames) this.dispatch(frame);
  }

  private dispatch(frame: Frame): void {
    if (frame.code === BackendCode.ParameterStatus) {
      const [name, value] = decodeParameterStatus(frame.body);
      this.parameters.set(name, value);
    } else if (frame.code === BackendCode.ReadyForQuery) {
      this.status = String.fromCharCode(frame.body[0] as number) as TransactionStatus;
      // Outside a transaction block, portals do not outlive the Sync or Query that ended it.
      if (this.status === 'I') this.portals.clear();
    }
    const head = this.queue[0];
    if (head === undefined) {
      if (frame.code === BackendCode.ErrorResponse) {
        // An unsolicited error is FATAL: the backend is about to close (e.g. admin shutdown).
        this.fail(backendError(frame.body, `backend ${this.name}`));
      } else {
        this.onIdleMessage?.(frame);
      }
      return;
    }
    let done: boolean;
    try {
      done = head.consumer(frame);
    } catch (error) {
      // The rest of this reply would reach the wrong consumer: the connection is unusable.
      this.queue.shift();
      head.reject(error as Error);
      this.fail(this.unavailable('reply could not be handled', error));
      return;
    }
    if (done) {
      this.queue.shift();
      head.resolve();
    }
  }

  private unavailable(reason: string, cause?: unknown): SqlError {
    const { name, host, port } = this.config;
    return new SqlError(
      SqlState.CONNECTION_FAILURE,
      `backend ${name} (${host}:${port}) is unavailable: ${reason}`,
      cause === undefined ? {} : { cause },
    );
  }

  private fail(error: SqlError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.failedAt = performance.now();
    for (const pending of this.queue.splice(0)) pending.reject(error);
    this.socket.destroy();
    this.onClose?.(error);
  }

  /** Sends Terminate and closes; any open transaction on the backend is rolled back by it. */
  close(): void {
    if (this.failure !== undefined) return;
    const w = new MessageWriter(8);
    this.socket.end(fe.terminate(w).take());
    this.fail(this.unavailable('closed by the proxy'));
  }

  /** Closes at once, without Terminate (used when the client vanished). */
  destroy(): void {
    this.socket.destroy();
    this.fail(this.unavailable('closed by the proxy'));
  }
}
