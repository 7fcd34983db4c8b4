import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli.ts';
import { SECRET, startTestCluster, type TestCluster } from '../harness/cluster.ts';

describe('the rollback command of the CLI', () => {
  let tc: TestCluster;
  let config: string;
  const run = async (...args: string[]) => {
    let out = '';
    let err = '';
    const code = await runCli(['rollback', '--config', config, ...args], {
      stdout: (text) => {
        out += text;
      },
      stderr: (text) => {
        err += text;
      },
      start: async () => {},
    });
    return { code, out, err };
  };

  before(async () => {
    tc = await startTestCluster();
    const dir = mkdtempSync(join(tmpdir(), 'qo-cli-'));
    config = join(dir, 'orchestrator.yml');
    const backend = tc.backends[0];
    writeFileSync(
      config,
      [
        `secret: ${SECRET}`,
        `listen: 127.0.0.1:0`,
        `admin:`,
        `  listen: 127.0.0.1:${new URL(tc.adminUrl).port}`,
        'clusters:',
        '  demo:',
        '    backends:',
        `      - { host: 127.0.0.1, port: ${backend?.port}, user: postgres }`,
        '',
      ].join('\n'),
    );
    const client = await tc.client();
    await client.query('CREATE TABLE kv (k int PRIMARY KEY, v text)');
    await client.query("INSERT INTO kv VALUES (1, 'a'), (2, 'b')");
  });
  after(() => tc?.stop());

  it('shows the undo of a query on a dry run, runs it, and refuses a second time', async () => {
    const listed = await tc.admin('GET', `/queries?cluster=${tc.cluster}&kind=write&limit=1`);
    const id = String(listed.body.queries[0].id);
    const dry = await run('--query', id, '--dry-run');
    assert.equal(dry.code, 0, dry.err);
    assert.match(JSON.parse(dry.out).sql, /DELETE FROM public\.kv WHERE k IN \(1, 2\);/);
    assert.equal(
      (await tc.client().then((c) => c.query('SELECT count(*)::int AS n FROM kv'))).rows[0].n,
      2,
    );
    const done = await run('--query', id);
    assert.equal(done.code, 0, done.out);
    assert.equal(
      (await tc.client().then((c) => c.query('SELECT count(*)::int AS n FROM kv'))).rows[0].n,
      0,
    );
    const again = await run('--query', id);
    assert.equal(again.code, 1);
    assert.match(again.out, /already rolled back/);
  });

  it('says what is wrong with the arguments', async () => {
    const both = await run('--query', '1', '--transaction', 'x');
    assert.equal(both.code, 2);
  });
});
