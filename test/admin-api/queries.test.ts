import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Rollback } from '../../src/cluster/audit.ts';
import { auditEntry, type Fixture, startFixture } from './fixture.ts';

let fixture: Fixture;

before(async () => {
  fixture = await startFixture();
});
after(async () => {
  await fixture.stop();
});

const undo: Rollback = {
  statements: [
    {
      sql: 'DELETE FROM test1.employees WHERE id = $1',
      params: [{ oid: 23, type: 'integer', binary: 'AAAAAg==', text: '2' }],
    },
  ],
  display: 'DELETE FROM test1.employees WHERE id = 2;',
};

/** Records one committed change that can be rolled back, and returns its id. */
async function change(overrides: Parameters<typeof auditEntry>[0] = {}): Promise<number> {
  const [id] = await fixture.catalog.recordCommit(null, overrides.cluster ?? 'prod', [
    auditEntry({ rollback: undo, reversibility: 'exact', ...overrides }),
  ]);
  return id!;
}

type Entry = Record<string, unknown>;

describe('GET /queries', () => {
  test('lists entries newest first, filtered by cluster, user, transaction and kind', async () => {
    const a = await change({ cluster: 'search', user: 'ana', transaction: 'tx-1' });
    const b = await change({ cluster: 'search', user: 'ana', transaction: 'tx-1', kind: 'ddl' });
    const c = await change({ cluster: 'search', user: 'ben' });
    await change({ cluster: 'elsewhere', user: 'ana' });

    const ids = async (query: string): Promise<number[]> => {
      const response = await fixture.request('GET', `/queries?${query}`);
      assert.equal(response.status, 200, query);
      return (response.body['queries'] as Entry[]).map((entry) => Number(entry['id']));
    };
    assert.deepEqual(await ids('cluster=search'), [c, b, a]);
    assert.deepEqual(await ids('cluster=search&user=ana'), [b, a]);
    assert.deepEqual(await ids('cluster=search&transaction=tx-1&kind=ddl'), [b]);
    assert.deepEqual(await ids('cluster=search&limit=2'), [c, b]);
    assert.deepEqual(await ids(`cluster=search&after_id=${a}`), [c, b]);
  });

  test('a listed entry shows its rollback for people, not its statements', async () => {
    const id = await change({ cluster: 'shown' });
    const response = await fixture.request('GET', '/queries?cluster=shown');
    const [entry] = response.body['queries'] as Entry[];
    assert.equal(entry?.['id'], id);
    assert.deepEqual(entry?.['rollback'], { display: undo.display });
    assert.equal(entry?.['reversibility'], 'exact');
    assert.equal(entry?.['command_tag'], 'INSERT 0 1');
    assert.ok(!('after_image' in entry!));
  });

  test('invalid query parameters are refused with 400 naming the parameter', async () => {
    const cases: [string, string][] = [
      ['limit=0', 'query parameter "limit" must be an integer from 1 to 1000'],
      ['limit=5000', 'query parameter "limit" must be an integer from 1 to 1000'],
      ['limit=ten', 'query parameter "limit" must be an integer'],
      ['after_id=-1', 'query parameter "after_id" must be an integer at least 0'],
      ['kind=select', 'query parameter "kind" must be one of read, write, ddl'],
      ['clster=prod', 'query parameter "clster" is not known'],
    ];
    for (const [query, message] of cases) {
      const response = await fixture.request('GET', `/queries?${query}`);
      assert.equal(response.status, 400, query);
      assert.ok(String(response.body['error']).startsWith(message), String(response.body['error']));
    }
  });
});

describe('GET /queries/:id', () => {
  test('shows the entry with its rollback statements, reversibility and after-image', async () => {
    const id = await change({ afterImage: { rows: [{ id: 2 }] }, durationMs: 3.5 });
    const response = await fixture.request('GET', `/queries/${id}`);
    assert.equal(response.status, 200);
    const { at, ...rest } = response.body;
    assert.ok(!Number.isNaN(Date.parse(String(at))));
    assert.deepEqual(rest, {
      id,
      cluster: 'prod',
      user: 'alice',
      session: 'admin-api',
      transaction: null,
      kind: 'write',
      sql: "INSERT INTO test1.employees (name) VALUES ('PEPE')",
      params: null,
      outcome: 'committed',
      error: null,
      duration_ms: 3.5,
      row_count: 1,
      command_tag: 'INSERT 0 1',
      reversibility: 'exact',
      reason: null,
      rollback_of: null,
      rolled_back_by: null,
      rollback: { display: undo.display, statements: undo.statements },
      after_image: { rows: [{ id: 2 }] },
    });
  });

  test('an id that does not exist is 404, one that is not an integer 400', async () => {
    const missing = await fixture.request('GET', '/queries/999999');
    assert.deepEqual(
      [missing.status, missing.body],
      [404, { error: 'query 999999 does not exist' }],
    );
    const bad = await fixture.request('GET', '/queries/abc');
    assert.deepEqual(
      [bad.status, bad.body],
      [400, { error: 'path parameter "id" must be an integer' }],
    );
  });
});

describe('POST /queries/:id/rollback', () => {
  test('runs the rollback and answers with the id of the rollback entry', async () => {
    const id = await change();
    const response = await fixture.request('POST', `/queries/${id}/rollback`, { body: {} });
    assert.equal(response.status, 200);
    const rollbackId = Number(response.body['query_id']);
    assert.ok(rollbackId > id);
    assert.deepEqual(response.body, {
      query_id: rollbackId,
      rollback_of: id,
      sql: undo.display,
      conflicts: [],
      executed: true,
    });
    assert.equal((await fixture.catalog.getEntry(id))?.rolledBackBy, rollbackId);
    assert.deepEqual(fixture.executor.calls.at(-1), {
      kind: 'rollback',
      identity: fixture.executor.calls.at(-1)?.identity,
      queryId: id,
      force: false,
      dryRun: false,
    });
  });

  test('a dry run shows the SQL and the conflicts and changes nothing', async () => {
    const id = await change();
    const conflict = {
      table: 'test1.employees',
      key: { id: '2' },
      columns: ['name'],
      reason: 'changed',
    };
    fixture.executor.conflicts.set(id, [conflict]);
    const response = await fixture.request('POST', `/queries/${id}/rollback`, {
      body: { dry_run: true },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      query_id: null,
      rollback_of: id,
      sql: undo.display,
      conflicts: [conflict],
      executed: false,
    });
    assert.equal((await fixture.catalog.getEntry(id))?.rolledBackBy, null);
  });

  test('rows changed since refuse the rollback with 409 unless forced', async () => {
    const id = await change();
    const conflict = {
      table: 'test1.employees',
      key: { id: '2' },
      columns: ['name'],
      reason: 'changed',
    };
    fixture.executor.conflicts.set(id, [conflict]);
    const refused = await fixture.request('POST', `/queries/${id}/rollback`);
    assert.equal(refused.status, 409);
    assert.deepEqual(refused.body, {
      error: `query ${id} was not rolled back: 1 row changed since; force to roll back anyway`,
      sql: undo.display,
      conflicts: [conflict],
      executed: false,
    });
    const forced = await fixture.request('POST', `/queries/${id}/rollback`, {
      body: { force: true },
    });
    assert.equal(forced.status, 200);
    assert.equal(forced.body['executed'], true);
    assert.deepEqual(forced.body['conflicts'], [conflict]);
  });

  test('409 says whether the entry has no rollback, is irreversible or was rolled back', async () => {
    const read = await change({
      kind: 'read',
      rollback: null,
      reversibility: 'none',
      reason: 'a read changes nothing',
    });
    const heap = await change({
      rollback: null,
      reversibility: 'irreversible',
      reason: 'table test1.log has no key',
    });
    const done = await change();
    const first = await fixture.request('POST', `/queries/${done}/rollback`);
    const cases: [number, string][] = [
      [read, `query ${read} has no rollback: a read changes nothing`],
      [heap, `query ${heap} is irreversible: table test1.log has no key`],
      [done, `query ${done} was already rolled back by query ${first.body['query_id']}`],
    ];
    for (const [id, message] of cases) {
      const response = await fixture.request('POST', `/queries/${id}/rollback`);
      assert.equal(response.status, 409);
      assert.equal(response.body['error'], message);
    }
  });

  test('an unknown id is 404', async () => {
    const response = await fixture.request('POST', '/queries/999999/rollback');
    assert.deepEqual(
      [response.status, response.body],
      [404, { error: 'query 999999 does not exist' }],
    );
  });

  test('a rollback that fails on the backends is 400 with the database message', async () => {
    const id = await change();
    fixture.executor.failingRollbacks.add(id);
    const response = await fixture.request('POST', `/queries/${id}/rollback`);
    assert.equal(response.status, 400);
    assert.deepEqual(response.body, {
      error: 'rollback failed',
      message: 'insert or update violates foreign key constraint "fk"',
      code: '23503',
    });
  });

  test('the rollback permission on the entry cluster suffices; elsewhere it is refused', async () => {
    const id = await change({ cluster: 'team' });
    const other = await fixture.token({ subject: 'op', clusters: { prod: ['rollback'] } });
    const refused = await fixture.request('POST', `/queries/${id}/rollback`, { token: other });
    assert.equal(refused.status, 403);
    assert.equal(
      refused.body['error'],
      `rolling back query ${id} needs the rollback permission on cluster "team"`,
    );
    const writer = await fixture.token({ subject: 'op', clusters: { team: ['write'] } });
    assert.equal(
      (await fixture.request('POST', `/queries/${id}/rollback`, { token: writer })).status,
      403,
    );

    const allowed = await fixture.token({ subject: 'op', clusters: { team: ['rollback'] } });
    const response = await fixture.request('POST', `/queries/${id}/rollback`, { token: allowed });
    assert.equal(response.status, 200);
    assert.equal(fixture.executor.calls.at(-1)?.identity.subject, 'op');
  });

  test('an unknown option or a wrong type is refused with 400 naming it', async () => {
    const id = await change();
    const typo = await fixture.request('POST', `/queries/${id}/rollback`, {
      body: { dryrun: true },
    });
    assert.equal(typo.status, 400);
    assert.equal(typo.body['error'], '"dryrun" is not known (known: force, dry_run)');
    const wrong = await fixture.request('POST', `/queries/${id}/rollback`, { body: { force: 1 } });
    assert.equal(wrong.body['error'], '"force" must be a boolean (true or false)');
  });
});
