import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mintOriginalToken, verifyToken } from '../../src/auth/tokens.ts';
import { FAILING_SQL, type Fixture, REFUSED_SQL, SECRET, startFixture } from './fixture.ts';

let fixture: Fixture;

before(async () => {
  fixture = await startFixture();
});
after(async () => {
  await fixture.stop();
});

describe('GET /status', () => {
  test('answers {"status": "ok"} to any valid token, with the health of each cluster', async () => {
    const token = await mintOriginalToken(SECRET, {
      user: 'u',
      data: { db1: ['read'] },
      is_admin: false,
    });
    const response = await fixture.request('GET', '/status', { token });
    assert.equal(response.status, 200);
    assert.equal(response.body['status'], 'ok');
    assert.deepEqual(response.body['clusters'], fixture.executor.status());
  });
});

describe('POST /generate_token', () => {
  const valid = { user: 'alice', data: { db1: ['adm'], db2: ['read', 'write'] }, is_admin: false };

  test('answers {"token": ...} in the original shape, with its permissions', async () => {
    const response = await fixture.request('POST', '/generate_token', { body: valid });
    assert.equal(response.status, 200);
    assert.deepEqual(Object.keys(response.body), ['token']);
    const identity = await verifyToken(String(response.body['token']), SECRET);
    assert.equal(identity.subject, 'alice');
    assert.equal(identity.admin, false);
    assert.equal(identity.exp, undefined);
    assert.deepEqual(
      { ...identity.clusters },
      { db1: ['admin'], db2: ['read', 'write', 'ddl', 'rollback'] },
    );
    const record = (await fixture.catalog.listTokens()).find((t) => t.jti === identity.jti);
    assert.deepEqual(record?.claims, valid);
  });

  test('an admin token it issues works on admin routes', async () => {
    const issued = await fixture.request('POST', '/generate_token', {
      body: { user: 'boss', data: {}, is_admin: true },
    });
    const token = String(issued.body['token']);
    assert.equal((await fixture.request('GET', '/tokens', { token })).status, 200);
  });

  test('each invalid body is refused with 400 naming the faulty key', async () => {
    const { user: _user, ...noUser } = valid;
    const { data: _data, ...noData } = valid;
    const { is_admin: _isAdmin, ...noAdmin } = valid;
    const cases: [unknown, string][] = [
      [noUser, 'missing key "user"'],
      [noData, 'missing key "data"'],
      [noAdmin, 'missing key "is_admin"'],
      [{ ...valid, data: ['db1'] }, '"data" must be an object of lists of strings'],
      [{ ...valid, data: 'db1' }, '"data" must be an object of lists of strings'],
      [{ ...valid, data: { db1: 'adm' } }, '"data.db1" must be a list of strings'],
      [{ ...valid, data: { db1: ['adm', 2] } }, '"data.db1" must be a list of strings'],
      [{ ...valid, user: 42 }, '"user" must be a string'],
      [{ ...valid, is_admin: 'false' }, '"is_admin" must be a boolean (true or false)'],
      [{ ...valid, data: { db1: ['root'] } }, 'claim "data.db1" holds unknown permission "root"'],
      [{ ...valid, user: '' }, 'a token needs a non-empty user'],
    ];
    for (const [body, message] of cases) {
      const response = await fixture.request('POST', '/generate_token', { body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.ok(
        String(response.body['error']).startsWith(message),
        `${JSON.stringify(body)}: ${response.body['error']}`,
      );
    }
    for (const raw of [undefined, '', '   ']) {
      const response = await fixture.request(
        'POST',
        '/generate_token',
        raw === undefined ? {} : { raw },
      );
      assert.deepEqual([response.status, response.body], [400, { error: 'no JSON body' }]);
    }
  });

  test('needs an admin token', async () => {
    const token = await mintOriginalToken(SECRET, {
      user: 'u',
      data: { db1: ['adm'] },
      is_admin: false,
    });
    const response = await fixture.request('POST', '/generate_token', { token, body: valid });
    assert.deepEqual(
      [response.status, response.body],
      [403, { error: 'this route needs an admin token' }],
    );
  });
});

describe('POST /execute_query', () => {
  test('answers {"message": "OK", "query_id": N} with the last audit id of the query', async () => {
    const token = await mintOriginalToken(SECRET, {
      user: 'writer',
      data: { prod: ['write'] },
      is_admin: false,
    });
    const sql = 'INSERT INTO test1.employees ("name", manager) VALUES (\'PEPE\', 1);';
    const response = await fixture.request('POST', '/execute_query', {
      token,
      body: { query: sql, group: 'prod' },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(Object.keys(response.body), ['message', 'query_id']);
    assert.equal(response.body['message'], 'OK');
    const entry = await fixture.catalog.getEntry(Number(response.body['query_id']));
    assert.equal(entry?.sql, sql);
    const call = fixture.executor.calls.at(-1);
    assert.equal(call?.kind, 'execute');
    assert.equal(call?.identity.subject, 'writer');
    assert.deepEqual(call?.kind === 'execute' && [call.cluster, call.sql, call.override], [
      'prod',
      sql,
      undefined,
    ]);
  });

  test('a given rollback overrides the generated one, with the rollback permission', async () => {
    const override = 'DELETE FROM test1.employees WHERE "name" = \'PEPE\';';
    const response = await fixture.request('POST', '/execute_query', {
      body: { query: 'INSERT 1', group: 'prod', rollback: override },
    });
    assert.equal(response.status, 200);
    const entry = await fixture.catalog.getEntry(Number(response.body['query_id']));
    assert.equal(entry?.rollback?.display, override);

    const token = await fixture.token({ subject: 'w', clusters: { prod: ['write'] } });
    const refused = await fixture.request('POST', '/execute_query', {
      token,
      body: { query: 'INSERT 1', group: 'prod', rollback: override },
    });
    assert.equal(refused.status, 403);
    assert.match(String(refused.body['error']), /needs the rollback permission on cluster "prod"/);
  });

  test('a failed query is 400 with the database message', async () => {
    const response = await fixture.request('POST', '/execute_query', {
      body: { query: FAILING_SQL, group: 'prod' },
    });
    assert.equal(response.status, 400);
    assert.deepEqual(response.body, {
      error: 'query failed',
      message: 'relation "missing_table" does not exist',
      code: '42P01',
    });
  });

  test('a statement the token may not run is 403', async () => {
    const token = await fixture.token({ subject: 'w', clusters: { prod: ['write'] } });
    const response = await fixture.request('POST', '/execute_query', {
      token,
      body: { query: REFUSED_SQL, group: 'prod' },
    });
    assert.equal(response.status, 403);
    assert.equal(response.body['code'], '42501');
    assert.match(String(response.body['error']), /permission denied/);
  });

  test('a token with no permission on the cluster is refused before anything runs', async () => {
    const token = await fixture.token({ subject: 'w', clusters: { dev: ['write'] } });
    const calls = fixture.executor.calls.length;
    const response = await fixture.request('POST', '/execute_query', {
      token,
      body: { query: 'SELECT 1', group: 'prod' },
    });
    assert.deepEqual(
      [response.status, response.body],
      [403, { error: 'the token has no permission on cluster "prod"' }],
    );
    assert.equal(fixture.executor.calls.length, calls);
  });

  test('invalid bodies are refused with 400 naming the faulty key', async () => {
    const cases: [unknown, string][] = [
      [{ group: 'prod' }, 'missing key "query"'],
      [{ query: 'SELECT 1' }, 'missing key "group"'],
      [{ query: '', group: 'prod' }, '"query" must not be empty'],
      [{ query: 'SELECT 1', group: 3 }, '"group" must be a string'],
      [{ query: 'SELECT 1', group: 'prod', rollback: false }, '"rollback" must be a string'],
    ];
    for (const [body, message] of cases) {
      const response = await fixture.request('POST', '/execute_query', { body });
      assert.deepEqual([response.status, response.body], [400, { error: message }]);
    }
  });
});

describe('POST /execute_rollback', () => {
  test('answers {"message": "OK", "query_id": M} with the id of the rollback entry', async () => {
    const executed = await fixture.request('POST', '/execute_query', {
      body: { query: 'INSERT 2', group: 'prod' },
    });
    const id = Number(executed.body['query_id']);
    const token = await mintOriginalToken(SECRET, {
      user: 'w',
      data: { prod: ['write'] },
      is_admin: false,
    });
    const response = await fixture.request('POST', '/execute_rollback', {
      token,
      body: { query_id: id },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(Object.keys(response.body), ['message', 'query_id']);
    const rollbackId = Number(response.body['query_id']);
    assert.ok(rollbackId > id);
    assert.equal((await fixture.catalog.getEntry(rollbackId))?.rollbackOf, id);

    const again = await fixture.request('POST', '/execute_rollback', { body: { query_id: id } });
    assert.deepEqual(
      [again.status, again.body],
      [
        409,
        {
          error: `query ${id} was already rolled back by query ${rollbackId}`,
          rolled_back_by: rollbackId,
        },
      ],
    );
  });

  test('an unknown id is 404, a missing or wrong one 400, no permission 403', async () => {
    const missing = await fixture.request('POST', '/execute_rollback', {
      body: { query_id: 999999 },
    });
    assert.deepEqual(
      [missing.status, missing.body],
      [404, { error: 'query 999999 does not exist' }],
    );
    const absent = await fixture.request('POST', '/execute_rollback', { body: {} });
    assert.deepEqual([absent.status, absent.body], [400, { error: 'missing key "query_id"' }]);
    const text = await fixture.request('POST', '/execute_rollback', { body: { query_id: '1' } });
    assert.deepEqual([text.status, text.body], [400, { error: '"query_id" must be an integer' }]);

    const executed = await fixture.request('POST', '/execute_query', {
      body: { query: 'INSERT 3', group: 'prod' },
    });
    const reader = await mintOriginalToken(SECRET, {
      user: 'r',
      data: { prod: ['read'] },
      is_admin: false,
    });
    const refused = await fixture.request('POST', '/execute_rollback', {
      token: reader,
      body: { query_id: executed.body['query_id'] },
    });
    assert.equal(refused.status, 403);
  });
});
