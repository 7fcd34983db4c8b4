/**
 * Protocol conformance: the same scripted message sequences, sent straight to PostgreSQL and
 * through the proxy, get the same replies (message types, command tags, SQLSTATEs,
 * transaction status, columns, values). Authentication differs (a JWT as cleartext password for
 * the proxy, trust for PostgreSQL), so replies are compared from the first ReadyForQuery on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import { startTestPostgres, type TestPostgres } from '../harness/postgres.ts';
import { runSequence, type Target } from './conformance-run.ts';
import { SEQUENCES } from './conformance-sequences.ts';

describe('protocol conformance: PostgreSQL and the proxy answer alike', () => {
  let tc: TestCluster;
  let server: TestPostgres;
  let direct: Target;
  let proxy: Target;

  before(async () => {
    [tc, server] = await Promise.all([startTestCluster(), startTestPostgres()]);
    direct = {
      name: 'PostgreSQL',
      port: server.port,
      parameters: { user: server.user, database: server.database },
    };
    proxy = {
      name: 'proxy',
      port: tc.proxyPort,
      parameters: { user: 'app', database: tc.cluster },
      password: tc.adminToken,
    };
  });
  after(async () => {
    await tc?.stop();
    await server?.stop();
  });

  it('has at least 30 sequences', () => {
    assert.ok(SEQUENCES.length >= 30, `${SEQUENCES.length} sequences`);
  });

  for (const sequence of SEQUENCES) {
    it(sequence.name, sequence.todo === undefined ? {} : { todo: sequence.todo }, async () => {
      const expected = await runSequence(direct, sequence);
      const actual = await runSequence(proxy, sequence);
      assert.deepEqual(actual, expected);
    });
  }
});
