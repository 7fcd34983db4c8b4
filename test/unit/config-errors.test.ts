// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the tests write the ${VAR} syntax of configuration files
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { CLUSTER, lines, problems, tempDir } from './config-helpers.ts';

const temp = tempDir();

describe('problems are located by line, column and key path', () => {
  test('a wrong type names what was expected and what was found', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  prod:',
      '    backends:',
      '      - host: 10.0.0.1',
      '        user: app',
      '        port: abc',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:7:15: clusters.prod.backends[0].port: expected an integer from 1 to 65535, got "abc"',
    ]);
  });

  test('unknown keys at every level suggest the key that was probably meant', () => {
    const text = lines(
      'secret: s',
      'lisen: 127.0.0.1:6432',
      'admin: { lissten: 127.0.0.1:6480 }',
      'log: { levle: info }',
      'catalog: { ulr: "postgres://h/db" }',
      'clusters:',
      '  prod:',
      '    backend: []',
      '    maxCaptureRows: 3',
      '  dev:',
      '    backends:',
      '      - { host: h, user: u, prot: 1, dbname: x }',
      '  stage:',
      '    embedded: 1',
      '    colour: blue',
    );
    assert.deepEqual(
      problems(text),
      [
        'orchestrator.yml:2:1: lisen: unknown key; did you mean `listen`?',
        'orchestrator.yml:3:10: admin.lissten: unknown key; did you mean `listen`?',
        'orchestrator.yml:4:8: log.levle: unknown key; did you mean `level`?',
        'orchestrator.yml:5:12: catalog.ulr: unknown key; did you mean `url`?',
        'orchestrator.yml:5:10: catalog: expected `embedded` or `url`',
        'orchestrator.yml:7:3: clusters.prod: no backend: give `backends:` (a list of databases) or `embedded: N`',
        'orchestrator.yml:8:5: clusters.prod.backend: unknown key; did you mean `backends`?',
        'orchestrator.yml:9:5: clusters.prod.maxCaptureRows: unknown key; did you mean `max_capture_rows`?',
        'orchestrator.yml:12:29: clusters.dev.backends[0].prot: unknown key; did you mean `port`?',
        'orchestrator.yml:12:38: clusters.dev.backends[0].dbname: unknown key; did you mean `database`?',
        'orchestrator.yml:15:5: clusters.stage.colour: unknown key; expected one of `backends`, `embedded`, `require_rollback`, `max_capture_rows`, `capture`, `require_two_phase`',
      ].sort(byPosition),
    );
  });

  test('a missing secret is reported at the top of the file', () => {
    assert.deepEqual(problems(CLUSTER), [
      'orchestrator.yml:1:1: secret: required; it signs and verifies tokens; write `secret: ${QO_SECRET}`',
    ]);
  });

  test('an empty secret is refused, also when it comes from an empty variable', () => {
    const expected = 'orchestrator.yml:1:9: secret: empty; the secret signs and verifies tokens';
    assert.deepEqual(problems(lines('secret: ""', CLUSTER)), [expected]);
    assert.deepEqual(problems(lines('secret: "  "', CLUSTER)), [expected]);
    assert.deepEqual(problems(lines('secret: ${S}', CLUSTER), { S: '' }), [expected]);
    assert.deepEqual(problems(lines('secret:', CLUSTER)), [
      'orchestrator.yml:1:8: secret: required; it signs and verifies tokens; write `secret: ${QO_SECRET}`',
    ]);
  });

  test('a cluster needs backends or embedded servers, not both and not neither', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  a:',
      '    require_rollback: true',
      '  b:',
      '  c:',
      '    backends: []',
      '  d:',
      '    embedded: 2',
      '    backends: [{ host: h, user: u }]',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:3:3: clusters.a: no backend: give `backends:` (a list of databases) or `embedded: N`',
      'orchestrator.yml:5:3: clusters.b: no backend: give `backends:` (a list of databases) or `embedded: N`',
      'orchestrator.yml:7:15: clusters.c.backends: empty list; a cluster needs at least one backend',
      'orchestrator.yml:9:5: clusters.d.embedded: a cluster has either `backends` or `embedded: N`, not both',
    ]);
  });

  test('a cluster name given twice is refused', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  prod: { embedded: 1 }',
      '  prod: { embedded: 2 }',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:4:3: clusters.prod: duplicate cluster name `prod` (first defined at line 3)',
    ]);
  });

  test('a key given twice is refused at any level', () => {
    const text = lines(
      'secret: s',
      'secret: t',
      'clusters:',
      '  prod:',
      '    backends:',
      '      - { host: a, user: u, host: b }',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:2:1: secret: duplicate key `secret` (first at line 1)',
      'orchestrator.yml:6:29: clusters.prod.backends[0].host: duplicate key `host` (first at line 6)',
    ]);
  });

  test('YAML syntax errors are reported one per line', () => {
    const text = lines('secret: s', 'listen: [1, 2', 'clusters: {}');
    const [first, ...rest] = problems(text);
    assert.match(first ?? '', /^orchestrator\.yml:3:1: YAML: /);
    assert.equal(rest.length, 0);
  });

  test('an unquoted ${VAR} inside { } gets the fix in the message', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  p:',
      '    backends:',
      '      - { host: h, user: u, password: ${PW} }',
    );
    const [first] = problems(text, { PW: 'x' });
    assert.match(first ?? '', /^orchestrator\.yml:5:40: YAML: .*quote values that use \$\{VAR\}/);
  });

  test('bad listen addresses are refused', () => {
    const listen = (value: string) => problems(lines('secret: s', `listen: ${value}`, CLUSTER));
    assert.deepEqual(listen('localhost'), [
      'orchestrator.yml:2:9: listen: expected "host:port", got "localhost" (no port)',
    ]);
    assert.deepEqual(listen('127.0.0.1:99999'), [
      'orchestrator.yml:2:9: listen: expected "host:port" with a port from 0 to 65535, got "127.0.0.1:99999"',
    ]);
    assert.match(
      listen('"::1:80"')[0] ?? '',
      /^orchestrator\.yml:2:9: listen: .*write IPv6 addresses in brackets/,
    );
    assert.deepEqual(listen('"bad host:80"'), [
      'orchestrator.yml:2:9: listen: expected "host:port", got "bad host:80" ("bad host" is not a host)',
    ]);
    assert.match(
      listen('[::1]:80')[0] ?? '',
      /^orchestrator\.yml:2:14: YAML: .*quote IPv6 addresses/,
    );
    assert.deepEqual(listen('{ host: h, port: 70000 }'), [
      'orchestrator.yml:2:26: listen.port: expected an integer from 0 to 65535, got 70000',
    ]);
  });

  test('the admin API cannot listen where the proxy listens', () => {
    const text = lines('secret: s', 'listen: 127.0.0.1:7000', 'admin: { listen: 7000 }', CLUSTER);
    assert.deepEqual(problems(text), [
      'orchestrator.yml:3:18: admin.listen: the same address as `listen`; give the admin API its own port',
    ]);
  });

  test('bad catalog URLs are refused without echoing the password', () => {
    const catalog = (value: string) =>
      problems(lines('secret: s', `catalog: { url: "${value}" }`, CLUSTER));
    const shape = 'expected a postgres://user:password@host:port/database URL';
    assert.deepEqual(catalog('mysql://u:hunter2@h/db'), [
      `orchestrator.yml:2:17: catalog.url: ${shape}, got a "mysql:" URL`,
    ]);
    assert.deepEqual(catalog('hunter2'), [
      `orchestrator.yml:2:17: catalog.url: ${shape}, got text that is not a URL`,
    ]);
    assert.deepEqual(catalog('postgres:///db'), [
      `orchestrator.yml:2:17: catalog.url: ${shape}, got a URL without a host`,
    ]);
    const both = problems(
      lines('secret: s', 'catalog: { embedded: {}, url: "postgres://h/d" }', CLUSTER),
    );
    assert.deepEqual(both, [
      'orchestrator.yml:2:26: catalog.url: a catalog is either `embedded` or `url`, not both',
    ]);
  });

  test('other wrong values', () => {
    const text = lines(
      'secret: s',
      'log: { level: verbose }',
      'clusters:',
      '  "*": { embedded: 1 }',
      '  p:',
      '    require_rollback: maybe',
      '    max_capture_rows: 0',
      '    backends: { host: h }',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:2:15: log.level: expected one of `debug`, `info`, `warn`, `error`, got "verbose"',
      'orchestrator.yml:4:3: clusters["*"]: `*` cannot name a cluster: tokens use it for "every cluster"',
      'orchestrator.yml:6:23: clusters.p.require_rollback: expected true or false, got "maybe"',
      'orchestrator.yml:7:23: clusters.p.max_capture_rows: expected an integer from 1 to 9007199254740991, got 0',
      'orchestrator.yml:8:15: clusters.p.backends: expected a list, got a mapping',
    ]);
  });

  test('capture takes true or false, and false cannot go with require_rollback', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  a:',
      '    embedded: 1',
      '    capture: sometimes',
      '  b:',
      '    embedded: 1',
      '    require_rollback: true',
      '    capture: false',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:5:14: clusters.a.capture: expected true or false, got "sometimes"',
      'orchestrator.yml:9:14: clusters.b.capture: `capture: false` leaves every change without an undo, which contradicts `require_rollback: true`',
    ]);
  });

  test('require_two_phase takes true or false', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  a:',
      '    embedded: 1',
      '    require_two_phase: always',
    );
    assert.deepEqual(problems(text), [
      'orchestrator.yml:5:24: clusters.a.require_two_phase: expected true or false, got "always"',
    ]);
  });

  test('a cluster may not list the same database twice, and backend names are unique', () => {
    const text = lines(
      'secret: s',
      'clusters:',
      '  p:',
      '    backends:',
      '      - { host: h, user: u }',
      '      - { host: h, user: v, port: 5432 }',
      '  q:',
      '    backends:',
      '      - { host: k, user: u, name: p/0 }',
    );
    assert.deepEqual(problems(text), [
      "orchestrator.yml:6:9: clusters.p.backends[1]: the same database and schema as clusters.p.backends[0]; a cluster's backends must be distinct",
      'orchestrator.yml:9:9: clusters.q.backends[0].name: backend name `p/0` is already used by clusters.p.backends[0]',
    ]);
  });

  test('a file with several problems reports all of them, in file order', () => {
    const text = lines('clusters:', '  p:', '    embedded: x', '  q: {}', 'listen: nowhere');
    assert.deepEqual(problems(text), [
      'orchestrator.yml:1:1: secret: required; it signs and verifies tokens; write `secret: ${QO_SECRET}`',
      'orchestrator.yml:3:15: clusters.p.embedded: expected an integer from 1 to 16, got "x"',
      'orchestrator.yml:4:3: clusters.q: no backend: give `backends:` (a list of databases) or `embedded: N`',
      'orchestrator.yml:5:9: listen: expected "host:port", got "nowhere" (no port)',
    ]);
  });

  test('an empty file, a list and a missing file are refused', () => {
    assert.deepEqual(problems(''), [
      'orchestrator.yml:1:1: the file is empty; expected a mapping with `secret` and `clusters`',
    ]);
    assert.deepEqual(problems('- a\n'), ['orchestrator.yml:1:1: expected a mapping, got a list']);
    assert.deepEqual(problems('secret: s\n'), [
      'orchestrator.yml:1:1: clusters: required; define at least one cluster',
    ]);
    const missing = join(temp, 'absent.yml');
    assert.throws(() => loadConfig(missing, {}), {
      name: 'ConfigError',
      message: `${missing}: no such file (looked for ${missing})`,
    });
  });
});

function byPosition(a: string, b: string): number {
  const position = (s: string) => s.split(':').slice(1, 3).map(Number) as [number, number];
  const [la, ca] = position(a);
  const [lb, cb] = position(b);
  return la - lb || ca - cb;
}
