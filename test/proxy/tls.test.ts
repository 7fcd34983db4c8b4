import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import { backendError } from '../../proxy/backend-decode.ts';
import { BackendCode } from '../../proxy/codes.ts';
import { ProxyServer } from '../../proxy/server.ts';
import type { TlsMode } from '../../src/config/types.ts';
import { silentLogger } from '../../src/log.ts';
import { runBounded } from '../clients/common.ts';
import { selfSignedCertificate, type TestCertificate } from '../harness/certificate.ts';
import { SECRET, startTestCluster, type TestCluster } from '../harness/cluster.ts';
import { sendCancel, WireClient } from './wire-client.ts';

const MODES: readonly TlsMode[] = ['disable', 'allow', 'require'];

describe('TLS towards clients', () => {
  let tc: TestCluster;
  let certificate: TestCertificate;
  const proxies = new Map<TlsMode, { server: ProxyServer; port: number }>();

  before(async () => {
    certificate = selfSignedCertificate();
    tc = await startTestCluster();
    // One proxy per mode, all in front of the same cluster and catalog.
    for (const mode of MODES) {
      const server = new ProxyServer({
        secret: SECRET,
        clusters: tc.orchestrator.clusters,
        catalog: tc.orchestrator.catalog,
        logger: silentLogger,
        tls: { mode, cert: certificate.cert, key: certificate.key },
      });
      const { port } = await server.listen('127.0.0.1', 0);
      proxies.set(mode, { server, port });
    }
  });
  after(async () => {
    for (const { server } of proxies.values()) await server.close();
    await tc?.stop();
    certificate?.remove();
  });

  const port = (mode: TlsMode) => proxies.get(mode)?.port as number;

  /** psql through the proxy of `mode` with an sslmode; prints whether the connection is TLS. */
  const psql = (mode: TlsMode, sslmode: string, extra: Record<string, string> = {}) =>
    runBounded(
      'psql',
      ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(port(mode)), '-U', 'app', '-d', 'demo'],
      {
        input: '\\conninfo\nSELECT 41 + 1;\n',
        env: { PGPASSWORD: tc.adminToken, PGSSLMODE: sslmode, PGCONNECT_TIMEOUT: '10', ...extra },
        timeoutMs: 20_000,
      },
    );

  for (const mode of MODES) {
    it(`answers psql with sslmode=require ${mode === 'disable' ? 'with a refusal' : 'over TLS'} under tls.mode ${mode}`, async () => {
      const result = await psql(mode, 'require');
      if (mode === 'disable') {
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /server does not support SSL, but SSL was required/);
        return;
      }
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /SSL connection \(protocol: TLSv1\.[23]/);
      assert.match(result.stdout, /^42$/m);
    });

    it(`answers psql with sslmode=disable ${mode === 'require' ? 'with a FATAL that explains why' : 'in clear'} under tls.mode ${mode}`, async () => {
      const result = await psql(mode, 'disable');
      if (mode === 'require') {
        assert.notEqual(result.code, 0);
        assert.match(
          result.stderr,
          /FATAL: {2}TLS is required: the password is a token and must not travel in clear text/,
        );
        return;
      }
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stdout, /SSL connection/);
      assert.match(result.stdout, /^42$/m);
    });
  }

  it('verifies as verify-full with psql against the configured certificate', async () => {
    const result = await psql('require', 'verify-full', { PGSSLROOTCERT: certificate.cert });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /SSL connection/);
  });

  it('serves node-postgres with ssl, and refuses it without ssl under require with 28000', async () => {
    const settings = {
      host: '127.0.0.1',
      user: 'app',
      password: tc.adminToken,
      database: 'demo',
    };
    const secure = new pg.Client({
      ...settings,
      port: port('require'),
      ssl: { ca: readFileSync(certificate.cert, 'utf8'), servername: 'localhost' },
    });
    await secure.connect();
    try {
      await secure.query('CREATE TABLE tls_rows (id int PRIMARY KEY)');
      await secure.query('INSERT INTO tls_rows VALUES ($1), ($2)', [1, 2]);
      const { rows } = await secure.query('SELECT count(*)::int AS n FROM tls_rows');
      assert.deepEqual(rows, [{ n: 2 }]);
    } finally {
      await secure.end();
    }
    const plain = new pg.Client({ ...settings, port: port('require') });
    plain.on('error', () => {});
    await assert.rejects(plain.connect(), (error: pg.DatabaseError) => {
      assert.equal(error.code, '28000');
      assert.match(error.message, /password is a token/);
      return true;
    });
  });

  it('lets a plain client cancel under require (CancelRequest carries no password)', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: port('require'),
      user: 'app',
      password: tc.adminToken,
      database: 'demo',
      ssl: { rejectUnauthorized: false },
    });
    await client.connect();
    try {
      const started = Date.now();
      const sleeping = client.query('SELECT pg_sleep(10)');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { processID, secretKey } = client as unknown as {
        processID: number;
        secretKey: number;
      };
      await sendCancel(port('require'), processID, secretKey);
      await assert.rejects(sleeping, { code: '57014' });
      assert.ok(Date.now() - started < 5_000);
    } finally {
      await client.end();
    }
  });

  const direct = (mode: TlsMode, alpn: string[] | undefined) =>
    new Promise<WireClient>((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: port(mode),
        rejectUnauthorized: false,
        ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
      });
      socket.once('secureConnect', () => resolve(new WireClient(socket)));
      socket.once('error', reject);
    });

  it('accepts direct TLS negotiation (PostgreSQL 17) with ALPN postgresql', async () => {
    const client = await direct('require', ['postgresql']);
    try {
      const startup = await client.startup({ user: 'app', database: 'demo' }, tc.adminToken);
      assert.ok(startup.parameters.has('server_version'));
      client.socket.write(Buffer.from('Q\0\0\0\x0dSELECT 7\0', 'latin1'));
      const reply = await client.untilReady();
      assert.deepEqual(
        reply.map((f) => String.fromCharCode(f.code)),
        ['T', 'D', 'C', 'Z'],
      );
    } finally {
      client.close();
    }
  });

  it('refuses direct TLS without ALPN postgresql, and closes direct TLS when TLS is disabled', async () => {
    let refusedByProxy = 0;
    for (const alpn of [undefined, ['http/1.1']]) {
      let client: WireClient;
      try {
        client = await direct('allow', alpn);
      } catch {
        // A TLS library may refuse the handshake itself when no protocol matches: also a refusal.
        continue;
      }
      client.socket.write(Buffer.from('\0\0\0\x08\0\x03\0\0', 'latin1'));
      const frame = await client.next();
      assert.equal(frame?.code, BackendCode.ErrorResponse);
      const error = backendError((frame as { body: Buffer }).body);
      assert.equal(error.code, '08P01');
      assert.match(error.message, /without ALPN/);
      refusedByProxy++;
    }
    assert.ok(refusedByProxy >= 1, 'a client without ALPN gets the FATAL');
    await assert.rejects(direct('disable', ['postgresql']));
  });

  it('refuses plain bytes sent after SSLRequest before the answer', async () => {
    const client = await WireClient.connect(port('allow'));
    // SSLRequest and, in the same write, the start of a startup message.
    client.socket.write(
      Buffer.concat([
        Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
        Buffer.from([0, 0, 0, 8, 0, 3, 0, 0]),
      ]),
    );
    const frame = await client.next();
    assert.equal(frame?.code, BackendCode.ErrorResponse, 'the answer is an error, not S');
    assert.equal(backendError((frame as { body: Buffer }).body).code, '08P01');
  });
});
