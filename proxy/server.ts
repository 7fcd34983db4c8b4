import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Catalog } from '../catalog/types.ts';
import { canConnect, type Identity } from '../src/auth/identity.ts';
import { verifyToken } from '../src/auth/tokens.ts';
import type { BackendConfig, TlsConfig } from '../src/config/types.ts';
import { SqlError, SqlState } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { PROTECTED_SETTINGS } from '../src/sql/classify.ts';
import type { BackendConnection } from './backend-connection.ts';
import * as be from './backend-encode.ts';
import type { ClusterRuntime } from './cluster.ts';
import { BackendCode, FrontendCode, StartupCode } from './codes.ts';
import { type Frame, FrameReader } from './framing.ts';
import { decodeFrontend, decodeStartup, type FrontendMessage } from './frontend.ts';
import { Session } from './session.ts';
import {
  ALPN,
  acceptSsl,
  alpnMissing,
  type ClientTls,
  clientTls,
  isClientHello,
  tlsRequired,
  unencryptedAfterSsl,
  upgrade,
} from './tls.ts';
import { MessageWriter } from './writer.ts';

export interface ProxyOptions {
  secret: string;
  clusters: Map<string, ClusterRuntime>;
  catalog: Catalog;
  logger: Logger;
  /** TLS towards clients; absent means disabled. */
  tls?: TlsConfig;
  /** Milliseconds a client may leave a transaction idle before it is disconnected; 0 or absent: no limit. */
  idleInTransactionTimeoutMs?: number;
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
  private readonly tls: ClientTls;

  constructor(private readonly options: ProxyOptions) {
    this.tls = clientTls(options.tls);
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
    const connection = new ClientConnection(socket, this.options, this.sessions, this.tls);
    socket.on('close', () => {
      this.sockets.delete(socket);
      connection.closed();
    });
    connection.onUpgrade = (secure) => {
      this.sockets.add(secure);
      secure.on('close', () => {
        this.sockets.delete(secure);
        connection.closed();
      });
    };
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
  /** Backends are paused until the client's socket drains. */
  private throttled = false;
  /** Set once the socket runs TLS; `direct` when the client began with TLS, without SSLRequest. */
  private encrypted: 'no' | 'negotiated' | 'direct' = 'no';
  private released = false;
  /** Batches handed to the session and not finished yet. */
  private busy = 0;
  /** Copy messages received for the batch queued last before its COPY started. */
  private copyFrames: Frame[] = [];
  /** Whole messages received after the one being handled, in the same read. */
  private trailing = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  onUpgrade: ((secure: Socket) => void) | undefined;

  constructor(
    private socket: Socket,
    private readonly options: ProxyOptions,
    private readonly sessions: Map<number, Registered>,
    private readonly tls: ClientTls,
  ) {
    this.logger = options.logger;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
  }

  private receive(chunk: Buffer): void {
    this.stopIdleTimer();
    if (
      this.phase === 'startup' &&
      this.encrypted === 'no' &&
      this.reader.buffered === 0 &&
      isClientHello(chunk)
    ) {
      this.directTls(chunk);
      return;
    }
    if (this.encrypted === 'direct' && (this.socket as TLSSocket).alpnProtocol !== ALPN) {
      this.fatal(alpnMissing());
      return;
    }
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.fatal(error);
      return;
    }
    for (const [index, frame] of frames.entries()) {
      if (this.phase === 'closed') return;
      this.trailing = frames.length - 1 - index;
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
        if (this.tls.mode === 'disable' || this.encrypted !== 'no') {
          this.socket.write(be.refuseEncryption);
          this.reader.startup = true;
          return;
        }
        if (this.reader.buffered > 0 || this.trailing > 0) throw unencryptedAfterSsl();
        this.socket.write(acceptSsl);
        this.reader.startup = true;
        this.secure('negotiated');
        return;
      case 'gssenc':
        this.socket.write(be.refuseEncryption);
        this.reader.startup = true;
        return;
      case 'cancel':
        this.cancel(message.processId, message.secretKey);
        this.socket.end();
        this.phase = 'closed';
        return;
      case 'startup': {
        if (this.tls.mode === 'require' && this.encrypted === 'no') throw tlsRequired();
        this.parameters = message.parameters;
        const w = new MessageWriter(64);
        const unsupported = Object.keys(message.parameters).filter((name) =>
          name.startsWith('_pq_.'),
        );
        // The version word is the whole newest version supported (3.0), as PostgreSQL sends it.
        if (message.minor > 0 || unsupported.length > 0)
          be.negotiateProtocolVersion(w, StartupCode.Protocol3, unsupported);
        w.bytes(be.authenticationCleartextPassword);
        this.socket.write(w.take());
        this.phase = 'password';
      }
    }
  }

  /** A ClientHello as the very first bytes: PostgreSQL 17's direct TLS negotiation. */
  private directTls(hello: Buffer): void {
    if (this.tls.mode === 'disable') {
      // Nothing can be said in a protocol the client is not speaking: close.
      this.phase = 'closed';
      this.socket.destroy();
      return;
    }
    this.secure('direct', hello);
  }

  /** Continues the connection over TLS; the frame reader goes on with the decrypted bytes. */
  private secure(how: 'negotiated' | 'direct', received?: Buffer): void {
    const secure = upgrade(this.socket, this.tls, received);
    this.socket = secure;
    this.encrypted = how;
    secure.on('data', (chunk: Buffer) => this.receive(chunk));
    secure.on('error', () => {});
    this.onUpgrade?.(secure);
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
        write: (data) => {
          // A client that does not read stops its backends too, instead of filling memory.
          if (!this.socket.write(data) && !this.throttled) {
            this.throttled = true;
            for (const backend of backends) backend.pause();
            // Corked data would never drain: let it go now.
            while (this.socket.writableCorked > 0) this.socket.uncork();
            this.socket.once('drain', () => {
              this.throttled = false;
              for (const backend of backends) backend.resume();
            });
          }
        },
        cork: () => this.socket.cork(),
        uncork: () => this.socket.uncork(),
      },
      searchPath: [],
    });
    try {
      await session.readSearchPath();
    } catch (error) {
      session.close();
      throw error;
    }
    if ((this.phase as string) === 'closed') {
      // The client left while the session was being set up.
      session.close();
      return;
    }
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
      // Settings the proxy depends on may not be set at startup either, directly or in `options`.
      // PostgreSQL's `options` parser drops backslashes (`standard\_conforming\_strings`): so do we.
      const text = `${name}=${value}`.toLowerCase().replaceAll('\\', '').replaceAll('-', '_');
      const named = [...PROTECTED_SETTINGS].find((setting) => text.includes(setting));
      if (named !== undefined) {
        throw new SqlError(
          SqlState.INSUFFICIENT_PRIVILEGE,
          `${named} is managed by the proxy and cannot be set by a client`,
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
        // Outside COPY, PostgreSQL ignores these. While batches are in flight they may be the
        // data of a COPY queued last and not started yet: the session takes them when it starts.
        if (this.busy > 0) this.copyFrames.push(frame);
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
    // A Query or a Sync ends with ReadyForQuery: from then on the client is the one waited for.
    const last = messages.at(-1)?.type;
    const answered = last === 'query' || last === 'sync';
    const copyFrames: Frame[] = [];
    this.copyFrames = copyFrames;
    this.busy++;
    this.chain = this.chain
      .then(() => {
        session.copyBacklog = copyFrames;
        return session.handle(messages, frames);
      })
      .catch((error) => this.fatal(error))
      .finally(() => {
        this.busy--;
        if (answered) this.startIdleTimer();
      });
  }

  /**
   * Like PostgreSQL's idle_in_transaction_session_timeout: a client that leaves a transaction
   * open (locks held, backends pinned) longer than the limit is disconnected, which rolls its
   * transaction back on every backend.
   */
  private startIdleTimer(): void {
    const limit = this.options.idleInTransactionTimeoutMs ?? 0;
    if (limit <= 0 || this.busy > 0 || this.phase !== 'ready') return;
    if (this.session === undefined || this.session.status === 'I') return;
    this.stopIdleTimer();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.busy > 0 || this.phase !== 'ready') return;
      this.logger.info('session.idle_timeout', {
        cluster: this.session?.cluster.name,
        session: this.session?.id,
        ms: limit,
      });
      this.fatal(
        new SqlError(
          SqlState.IDLE_IN_TRANSACTION_TIMEOUT,
          'terminating connection due to idle-in-transaction timeout',
          { severity: 'FATAL' },
        ),
      );
      // Do not wait for the client to close its end: the backends roll back now.
      this.closed();
    }, limit);
  }

  private stopIdleTimer(): void {
    if (this.idleTimer === undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
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
    // PostgreSQL cannot cancel a commit either; here a cancel could stop one backend's COMMIT PREPARED.
    if (registered.session.committing) return;
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
    this.stopIdleTimer();
    const session = this.session;
    if (session === undefined || this.released) return;
    this.released = true;
    // A COPY waiting for data that will never come ends as if the client had sent CopyFail.
    session.copySink?.fail();
    this.sessions.delete(this.processId);
    session.cluster.sessions--;
    this.chain.finally(() => session.close()).catch(() => {});
    this.logger.info('session.end', { cluster: session.cluster.name, session: session.id });
  }
}
