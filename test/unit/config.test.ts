// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the tests write the ${VAR} syntax of configuration files
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { CLUSTER, FILE, lines, problems, tempDir } from './config-helpers.ts';

const temp = tempDir();

describe('the current shape', () => {
  test('the documented example loads, with ${VAR} read from the environment', () => {
    const text = lines(
      'listen: 127.0.0.1:6432',
      'admin:',
      '  listen: 127.0.0.1:6480',
      'secret: ${QO_SECRET:-change-me}',
      'data_dir: .qo',
      'log: { level: debug }',
      'catalog:',
      '  url: postgres://user:pass@127.0.0.1:5432/qo',
      'clusters:',
      '  demo:',
      '    embedded: 2',
      '  prod:',
      '    require_rollback: true',
      '    max_capture_rows: 500',
      '    backends:',
      '      - { host: 10.0.0.1, port: 5433, user: app, password: "${PROD_PW}", database: app, schema: public, name: first }',
      '      - host: 10.0.0.2',
      '        user: app',
    );
    const config = parseConfig(text, join(temp, FILE), { PROD_PW: 's3cret', QO_SECRET: 'k' });
    assert.equal(config.secret, 'k');
    assert.equal(config.secretIsDefault, false);
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 6432 });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 6480 });
    assert.equal(config.dataDir, join(temp, '.qo'));
    assert.deepEqual(config.log, { level: 'debug' });
    assert.deepEqual(config.catalog, {
      kind: 'postgres',
      url: 'postgres://user:pass@127.0.0.1:5432/qo',
    });
    assert.deepEqual(config.clusters, [
      { name: 'demo', backends: [], embedded: 2, requireRollback: false, maxCaptureRows: 100_000 },
      {
        name: 'prod',
        requireRollback: true,
        maxCaptureRows: 500,
        backends: [
          {
            name: 'first',
            host: '10.0.0.1',
            port: 5433,
            user: 'app',
            password: 's3cret',
            database: 'app',
            schema: 'public',
          },
          { name: 'prod/1', host: '10.0.0.2', port: 5432, user: 'app', database: 'postgres' },
        ],
      },
    ]);
  });

  test('a minimal file gets every default, directories relative to the file', () => {
    const dir = join(temp, 'minimal');
    mkdirSync(dir);
    writeFileSync(join(dir, FILE), lines('secret: s', ...CLUSTER.trimEnd().split('\n')));
    const config = loadConfig(join(dir, FILE), {});
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 6432 });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 6480 });
    assert.equal(config.dataDir, join(dir, '.qo'));
    assert.deepEqual(config.catalog, { kind: 'embedded', dataDir: join(dir, '.qo', 'catalog') });
    assert.deepEqual(config.log, { level: 'info' });
    assert.equal(config.source, join(dir, FILE));
  });

  test('capture is on unless a cluster turns it off', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  on: { embedded: 1 }',
      '  off: { embedded: 1, capture: false }',
      '  explicit: { embedded: 1, capture: true }',
    );
    const config = parseConfig(text, join(temp, FILE), {});
    const captures = config.clusters.map((cluster) => [cluster.name, cluster.capture]);
    assert.deepEqual(captures, [
      ['on', undefined],
      ['off', false],
      ['explicit', true],
    ]);
  });

  test('an embedded catalog directory is relative to the file', () => {
    const text = lines('secret: s', 'catalog:', '  embedded: { data_dir: cat }', CLUSTER);
    const config = parseConfig(text, join(temp, FILE), {});
    assert.deepEqual(config.catalog, { kind: 'embedded', dataDir: join(temp, 'cat') });
    const empty = parseConfig(
      lines('secret: s', 'catalog:', '  embedded:', CLUSTER),
      join(temp, FILE),
      {},
    );
    assert.deepEqual(empty.catalog, { kind: 'embedded', dataDir: join(temp, '.qo', 'catalog') });
  });

  test('listen takes "host:port", a bracketed IPv6 address, a bare port or { host, port }', () => {
    const read = (value: string) =>
      parseConfig(lines('secret: s', `listen: ${value}`, CLUSTER), FILE, {}).listen;
    assert.deepEqual(read('0.0.0.0:7000'), { host: '0.0.0.0', port: 7000 });
    assert.deepEqual(read('"[::1]:7000"'), { host: '::1', port: 7000 });
    assert.deepEqual(read('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(read('7001'), { host: '127.0.0.1', port: 7001 });
    assert.deepEqual(read('{ port: 7002 }'), { host: '127.0.0.1', port: 7002 });
    assert.deepEqual(read('{ host: "::", port: 7003 }'), { host: '::', port: 7003 });
  });

  test('shared backend settings can come from an x- anchor through a merge key', () => {
    const text = lines(
      'secret: s',
      'x-backend: &backend { user: app, password: pw, database: app }',
      'clusters:',
      '  prod:',
      '    backends:',
      '      - { <<: *backend, host: a }',
      '      - { <<: *backend, host: b, database: other }',
    );
    const [cluster] = parseConfig(text, FILE, {}).clusters;
    assert.deepEqual(
      cluster?.backends.map((b) => [b.host, b.user, b.password, b.database]),
      [
        ['a', 'app', 'pw', 'app'],
        ['b', 'app', 'pw', 'other'],
      ],
    );
  });
});

describe('environment references', () => {
  const secretOf = (value: string, env: Record<string, string>) =>
    parseConfig(lines(`secret: "${value}"`, CLUSTER), FILE, env);

  test('${VAR} is replaced anywhere inside a string', () => {
    assert.equal(secretOf('a-${X}-b', { X: 'mid' }).secret, 'a-mid-b');
  });

  test('${VAR:-default} uses the default when the variable is unset or empty, and says so', () => {
    assert.equal(secretOf('${X:-dflt}', {}).secret, 'dflt');
    assert.equal(secretOf('${X:-dflt}', {}).secretIsDefault, true);
    assert.equal(secretOf('${X:-dflt}', { X: '' }).secret, 'dflt');
    assert.equal(secretOf('${X:-dflt}', { X: 'set' }).secretIsDefault, false);
    assert.equal(secretOf('${X-dflt}', { X: 'set' }).secret, 'set');
  });

  test('$${ writes a literal ${', () => {
    assert.equal(secretOf('p$${X}', {}).secret, 'p${X}');
  });

  test('numbers and booleans may come from the environment', () => {
    const text = lines(
      'secret: s',
      'listen: ${LISTEN}',
      'clusters:',
      '  prod:',
      '    require_rollback: ${STRICT:-true}',
      '    backends:',
      '      - { host: h, user: u, port: "${PORT}" }',
    );
    const config = parseConfig(text, FILE, { LISTEN: '127.0.0.1:7000', PORT: '6000' });
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 7000 });
    assert.equal(config.clusters[0]?.requireRollback, true);
    assert.equal(config.clusters[0]?.backends[0]?.port, 6000);
  });

  test('an unset variable with no default names the variable, line and key path', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  prod:',
      '    backends:',
      '      - { host: h, user: u, password: "${PROD_PW}" }',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:5:39: clusters.prod.backends[0].password: environment variable PROD_PW is not set (write ${PROD_PW:-default} to give a default)',
    ]);
  });

  test('a malformed reference is refused without quoting a password', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  p:',
      '    backends:',
      '      - { host: h, user: u, password: "x${a b}" }',
    );
    const [problem] = problems(text);
    assert.match(
      problem ?? '',
      /^orchestrator\.yml:5:39: clusters\.p\.backends\[0\]\.password: `\$\{\.\.\.\}` is not/,
    );
    assert.doesNotMatch(problem ?? '', /a b/);
  });
});
