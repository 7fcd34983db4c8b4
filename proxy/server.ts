import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import type { Catalog } from '../catalog/types.ts';
import { canConnect, type Identity } from '../src/auth/identity.ts';
import { verifyToken } from '../src/auth/tokens.ts';
import type { BackendConfig } from '../src/config/types.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import type { BackendConnection } from './backend-connection.ts';
import * as be from './backend-encode.ts';
import type { ClusterRuntime } from './cluster.ts';
import { BackendCode, FrontendCode, StartupCode } from './codes.ts';
import { type Frame, FrameReader } from './framing.ts';
import { decodeFrontend, decodeStartup, type FrontendMessage } from './frontend.ts';
import { Session } from './session.ts';
import { MessageWriter } from './writer.ts';

export interface ProxyOptions {
  secret: string;
  clusters: Map<string, ClusterRuntime>;
  catalog: Catalog;
  logger: Logger;
}

/** Startup parameters a client may not pass on to backends. */
const NOT_FORWARDED = new Set(['user', 'database', 'replication', 'default_transaction_read_only']);

interface Registered {
  session: Session;
  secretKey: number;
}

/**
 * Accepts PostgreSQL clients: startup, cleartext password verified as a JWT, the cluster named
 * by `database`, one pinned connection per backend, then the session's query loop.
 */
export class ProxyServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Sessions by the process id the proxy gave them, for CancelRequest. */
  private readonly sessions = new Map<number, Registered>();

  constructor(private readonly options: ProxyOptions) {
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const address = this.server.address();
    return { host, port: typeof address === 'object' && address !== null ? address.port : port };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const connection = new ClientConnection(socket, this.options, this.sessions);
    socket.on('close', () => {
      this.sockets.delete(socket);
      connection.closed();
    });
  }
}

/** One client socket through its phases: startup, password, ready. */
class ClientConnection {
  private readonly reader = new FrameReader(true);
  private phase: 'startup' | 'password' | 'connecting' | 'ready' | 'closed' = 'startup';
  private parameters: Record<string, string> = {};
  private session: Session | undefined;
  private processId = 0;
  /** Batches are handled one after the other, in arrival order. */
  private chain: Promise<void> = Promise.resolve();
  private pending: FrontendMessage[] = [];
  private pendingFrames: Frame[] = [];
  private readonly logger: Logger;

  constructor(
    private readonly socket: Socket,
    private readonly options: ProxyOptions,
    private readonly sessions: Map<number, Registered>,
  ) {
    this.logger = options.logger;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
  }

  private receive(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.fatal(error);
      return;
    }
    for (const frame of frames) {
      if (this.phase === 'closed') return;
      try {
        this.frame(frame);
      } catch (error) {
        this.fatal(error);
        return;
      }
    }
  }

  private frame(frame: Frame): void {
    switch (this.phase) {
      case 'startup':
        this.startup(frame);
        return;
      case 'password':
        if (frame.code !== FrontendCode.Password) {
          throw new SqlError(SqlState.PROTOCOL_VIOLATION, 'expected a password message', {
            severity: 'FATAL',
          });
        }
        this.phase = 'connecting';
        this.authenticate(frame.body).catch((error) => this.fatal(error));
        return;
      case 'connecting':
        // Pipelined by an eager client before AuthenticationOk: keep it for later.
        this.queue(frame);
        return;
      case 'ready':
        this.queue(frame);
        return;
    }
  }

  private startup(frame: Frame): void {
    const message = decodeStartup(frame);
    switch (message.type) {
      case 'ssl':
      case 'gssenc':
        // NOTE: TLS is not offered yet, so the JWT travels in clear text; keep the proxy on a trusted network.
        this.socket.write(be.refuseEncryption);
        this.reader.startup = true;
        return;
      case 'cancel':
        this.cancel(message.processId, message.secretKey);
        this.socket.end();
        this.phase = 'closed';
        return;
      case 'startup': {
        this.parameters = message.parameters;
        const w = new MessageWriter(64);
        const unsupported = Object.keys(message.parameters).filter((name) =>
          name.startsWith('_pq_.'),
        );
        if (message.minor > 0 || unsupported.length > 0)
          be.negotiateProtocolVersion(w, 0, unsupported);
        w.bytes(be.authenticationCleartextPassword);
        this.socket.write(w.take());
        this.phase = 'password';
      }
    }
  }

  private async authenticate(body: Buffer): Promise<void> {
    const token = body.toString('utf8', 0, Math.max(0, body.indexOf(0)));
    const user = this.parameters['user'] ?? '';
    const database = this.parameters['database'] ?? user;
    let identity: Identity;
    try {
      identity = await verifyToken(token, this.options.secret);
      if (identity.jti !== undefined && (await this.options.catalog.isRevoked(identity.jti))) {
        throw new Error('token has been revoked');
      }
    } catch (error) {
      this.logger.info('session.auth_failed', {
        user,
        cluster: database,
        reason: (error as Error).message,
      });
      throw new SqlError(
        SqlState.INVALID_PASSWORD,
        `password authentication failed for user "${user}": ${(error as Error).message}`,
        {
          severity: 'FATAL',
          hint: 'The password must be a JWT signed with the proxy secret; mint one with `npm run token` or POST /tokens.',
        },
      );
    }
    const cluster = this.options.clusters.get(database);
    if (cluster === undefined) {
      const known = [...this.options.clusters.keys()].join(', ');
      throw new SqlError(SqlState.INVALID_CATALOG_NAME, `database "${database}" does not exist`, {
        severity: 'FATAL',
        hint: `The database name picks a cluster; this proxy serves: ${known}.`,
      });
    }
    if (!canConnect(identity, cluster.name)) {
      throw new SqlError(
        SqlState.INVALID_AUTHORIZATION,
        `token for "${identity.subject}" grants no permission on cluster "${cluster.name}"`,
        { severity: 'FATAL' },
      );
    }
    // Backends a health check found down are not tried: the session reopens them once they are back.
    const backends = await cluster.connectBackends(this.forwarded(cluster.config.backends[0]));
    if (backends.every((b) => b.failure !== undefined)) {
      for (const b of backends) b.close();
      throw new SqlError(
        SqlState.CONNECTION_FAILURE,
        `no backend of cluster "${cluster.name}" is reachable: ${backends.map((b) => b.failure?.message).join('; ')}`,
        { severity: 'FATAL' },
      );
    }
    if (this.phase === 'closed') {
      for (const b of backends) b.close();
      return;
    }
    this.processId = randomBytes(4).readInt32BE(0) & 0x7fffffff;
    const secretKey = randomBytes(4).readInt32BE(0);
    const sessionId = randomUUID();
    const session = new Session({
      id: sessionId,
      identity,
      cluster,
      catalog: this.options.catalog,
      logger: this.logger.child({ cluster: cluster.name, session: sessionId.slice(0, 8) }),
      backends,
      channel: {
        write: (data) => this.socket.write(data),
        cork: () => this.socket.cork(),
        uncork: () => this.socket.uncork(),
      },
      searchPath: [],
    });
    await session.readSearchPath();
    this.session = session;
    this.sessions.set(this.processId, { session, secretKey });
    cluster.sessions++;
    const first = backends.find((b) => b.failure === undefined) as BackendConnection;
    first.onIdleMessage = (frame) => {
      if (
        frame.code === BackendCode.NotificationResponse ||
        frame.code === BackendCode.NoticeResponse
      ) {
        this.socket.write(frame.raw);
      }
    };
    const w = new MessageWriter(512);
    w.bytes(be.authenticationOk);
    for (const [name, value] of first.parameters) {
      // Backends run read-only by default so that a misrouted write fails; clients may write.
      be.parameterStatus(w, name, name === 'default_transaction_read_only' ? 'off' : value);
    }
    be.backendKeyData(w, this.processId, secretKey);
    w.bytes(be.readyForQuery.I);
    this.socket.write(w.take());
    this.logger.info('session.start', {
      cluster: cluster.name,
      session: sessionId,
      user: identity.subject,
      backends: backends.filter((b) => b.failure === undefined).length,
    });
    this.phase = 'ready';
    const early = this.pendingFrames;
    this.pending = [];
    this.pendingFrames = [];
    for (const frame of early) this.queue(frame);
  }

  /** The client's startup parameters that backends get, plus the proxy's own. */
  private forwarded(backend: BackendConfig | undefined): Record<string, string> {
    const parameters: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.parameters)) {
      if (NOT_FORWARDED.has(name.toLowerCase()) || name.startsWith('_pq_.')) continue;
      if (name === 'options' && /default_transaction_read_only/i.test(value)) {
        throw new SqlError(
          SqlState.INSUFFICIENT_PRIVILEGE,
          'default_transaction_read_only is managed by the proxy and cannot be set by a client',
          { severity: 'FATAL' },
        );
      }
      parameters[name] = value;
    }
    if (backend?.schema !== undefined && parameters['search_path'] === undefined) {
      parameters['search_path'] = `"${backend.schema.replaceAll('"', '""')}", public`;
    }
    parameters['default_transaction_read_only'] = 'on';
    return parameters;
  }

  private queue(frame: Frame): void {
    if (this.phase !== 'ready' || this.session === undefined) {
      this.pendingFrames.push(frame);
      return;
    }
    const copy = this.session.copySink;
    if (copy !== undefined) {
      // During COPY FROM STDIN, data goes straight to the backends; Flush and Sync are ignored.
      if (frame.code === FrontendCode.CopyData) copy.data(frame);
      else if (frame.code === FrontendCode.CopyDone) copy.done(frame);
      else if (frame.code === FrontendCode.CopyFail) copy.fail(frame);
      else if (frame.code !== FrontendCode.Flush && frame.code !== FrontendCode.Sync) {
        copy.fail(frame);
        this.pending.push(decodeFrontend(frame));
        this.pendingFrames.push(frame);
      }
      return;
    }
    const message = decodeFrontend(frame);
    switch (message.type) {
      case 'terminate':
        this.phase = 'closed';
        this.chain = this.chain.then(() => {
          this.socket.end();
        });
        return;
      case 'query':
        this.flushPending();
        this.enqueue([message], [frame]);
        return;
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        // Outside COPY, PostgreSQL ignores these.
        return;
      case 'functionCall':
        this.enqueueError(
          new SqlError(
            SqlState.FEATURE_NOT_SUPPORTED,
            'the function call protocol is not supported by the proxy',
          ),
        );
        return;
      case 'password':
        throw new SqlError(SqlState.PROTOCOL_VIOLATION, 'unexpected password message', {
          severity: 'FATAL',
        });
    }
    this.pending.push(message);
    this.pendingFrames.push(frame);
    if (message.type === 'sync' || message.type === 'flush') this.flushPending();
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    const messages = this.pending;
    const frames = this.pendingFrames;
    this.pending = [];
    this.pendingFrames = [];
    this.enqueue(messages, frames);
  }

  private enqueue(messages: FrontendMessage[], frames: Frame[]): void {
    const session = this.session as Session;
    this.chain = this.chain
      .then(() => session.handle(messages, frames))
      .catch((error) => this.fatal(error));
  }

  private enqueueError(error: SqlError): void {
    const session = this.session as Session;
    this.chain = this.chain.then(() => {
      session.sendError(error);
      session.readyForQuery();
    });
  }

  private cancel(processId: number, secretKey: number): void {
    const registered = this.sessions.get(processId);
    if (registered === undefined || registered.secretKey !== secretKey) return;
    for (const backend of registered.session.backends) {
      if (backend.failure !== undefined) continue;
      const w = new MessageWriter(16);
      w.begin(0)
        .int32(StartupCode.CancelRequest)
        .int32(backend.processId)
        .int32(backend.secretKey)
        .end();
      const socket = netConnect({ host: backend.config.host, port: backend.config.port });
      socket.on('error', () => {});
      socket.on('connect', () => socket.end(w.take()));
    }
  }

  /** Sends a FATAL (or the error as FATAL) and closes the connection. */
  private fatal(error: unknown): void {
    if (this.phase === 'closed') return;
    const sqlError =
      error instanceof SqlError
        ? new SqlError(error.code, error.message, {
            severity: 'FATAL',
            fields: error.fields,
            ...(error.detail === undefined ? {} : { detail: error.detail }),
            ...(error.hint === undefined ? {} : { hint: error.hint }),
          })
        : new SqlError(SqlState.INTERNAL_ERROR, `internal error: ${(error as Error).message}`, {
            severity: 'FATAL',
          });
    if (!(error instanceof SqlError)) {
      this.logger.error('session.crash', { error: (error as Error).stack ?? String(error) });
    }
    const w = new MessageWriter(256);
    be.errorResponse(w, sqlError);
    this.socket.end(w.take());
    this.phase = 'closed';
  }

  /** The client is gone: once the batch in progress ends, backends roll back and close. */
  closed(): void {
    this.phase = 'closed';
    const session = this.session;
    if (session === undefined) return;
    this.sessions.delete(this.processId);
    session.cluster.sessions--;
    this.chain.finally(() => session.close()).catch(() => {});
    this.logger.info('session.end', { cluster: session.cluster.name, session: session.id });
  }
}
