import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { CLUSTER, FILE, lines, problems, tempDir } from './config-helpers.ts';

const temp = tempDir();

describe('the original shape', () => {
  // The sample file of the original system, as described in the project's seed notes.
  const SEED_SAMPLE = lines(
    'secret: <key that signs and verifies the JWTs>',
    'native_database:          # the internal (catalog/audit) database',
    '  dbname: postgres',
    '  user: postgres',
    '  password: <...>',
    '  host: 127.0.0.1',
    '  port: 5432',
    'groups:                   # a list of clusters; each cluster a list of databases',
    '- - schema: app_production',
    '    dbname: postgres',
    '    user: pro_user',
    '    password: <...>',
    '    host: 10.0.0.1',
    '    port: 64000',
    "    name: prod            # the cluster's name, repeated on each database",
    '  - schema: app_production',
    '    dbname: postgres',
    '    user: pro_user',
    '    password: <...>',
    '    host: 10.0.0.2',
    '    port: 64000',
    '    name: prod',
    '- - schema: app_development',
    '    dbname: postgres',
    '    user: dev_user',
    '    password: <...>',
    '    host: 10.0.0.3',
    '    port: 5432',
    '    name: dev',
  );

  test('the sample file of the original loads: groups become clusters', () => {
    const config = parseConfig(SEED_SAMPLE, join(temp, FILE), {});
    assert.equal(config.secret, '<key that signs and verifies the JWTs>');
    assert.deepEqual(config.catalog, {
      kind: 'postgres',
      url: 'postgres://postgres:%3C...%3E@127.0.0.1:5432/postgres',
    });
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 6432 });
    const backend = (n: number, host: string, port: number, schema: string, user: string) => ({
      name: `${schema === 'app_production' ? 'prod' : 'dev'}/${n}`,
      host,
      port,
      user,
      password: '<...>',
      database: 'postgres',
      schema,
    });
    assert.deepEqual(config.clusters, [
      {
        name: 'prod',
        requireRollback: false,
        maxCaptureRows: 100_000,
        backends: [
          backend(0, '10.0.0.1', 64000, 'app_production', 'pro_user'),
          backend(1, '10.0.0.2', 64000, 'app_production', 'pro_user'),
        ],
      },
      {
        name: 'dev',
        requireRollback: false,
        maxCaptureRows: 100_000,
        backends: [backend(0, '10.0.0.3', 5432, 'app_development', 'dev_user')],
      },
    ]);
  });

  test('without native_database the catalog is embedded', () => {
    const text = lines('secret: s', 'groups:', '- - { host: h, user: u, name: prod }');
    const config = parseConfig(text, join(temp, FILE), {});
    assert.deepEqual(config.catalog, { kind: 'embedded', dataDir: join(temp, '.qo', 'catalog') });
    assert.equal(config.clusters[0]?.name, 'prod');
  });

  test('the two shapes cannot be mixed in one file', () => {
    const text = lines('secret: s', 'groups:', '- - { host: h, user: u, name: prod }', CLUSTER);
    assert.deepEqual(problems(text), [
      'orchestrator.yml:2:1: groups: cannot be used with `clusters` (line 4): the original shape (`groups`, `native_database`) and the current one (`clusters`, `catalog`) do not mix in one file',
    ]);
    const catalog = lines(
      'secret: s',
      'catalog: { url: "postgres://h/d" }',
      'native_database: { host: h, user: u }',
    );
    assert.match(
      problems(catalog)[0] ?? '',
      /^orchestrator\.yml:3:1: native_database: cannot be used with `catalog` \(line 2\)/,
    );
  });

  test('the databases of one group must name the same cluster, and groups different ones', () => {
    const text = lines(
      'secret: s',
      'groups:',
      '- - { host: a, user: u, name: prod }',
      '  - { host: b, user: u, name: prd }',
      '- - { host: c, user: u, name: dev }',
      '- - { host: d, user: u, name: dev }',
      '- - { host: e, user: u }',
      '- []',
      '- { host: f }',
    );
    assert.deepEqual(problems(text), [
      "orchestrator.yml:4:31: groups[0][1].name: `prd` differs from `prod` (line 3); every database of a group repeats its cluster's name",
      'orchestrator.yml:6:31: groups[2][0].name: duplicate cluster name `dev` (first defined by groups[1] at line 5)',
      'orchestrator.yml:7:5: groups[3][0].name: required',
      'orchestrator.yml:8:3: groups[4]: empty group; a cluster needs at least one database',
      'orchestrator.yml:9:3: groups[5]: expected a list, got a mapping',
    ]);
  });

  test('original keys are checked too, with the original spelling suggested', () => {
    const text = lines(
      'secret: s',
      'native_database: { host: h, user: u, database: x }',
      'groups:',
      '- - { host: a, user: u, name: prod, port: "6o00" }',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:2:38: native_database.database: unknown key; did you mean `dbname`?',
      'orchestrator.yml:4:43: groups[0][0].port: expected an integer from 1 to 65535, got "6o00"',
    ]);
  });
});
