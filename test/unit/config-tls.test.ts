import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { parseTimeout } from '../../src/config/sessions.ts';
import { selfSignedCertificate } from '../harness/certificate.ts';
import { CLUSTER, FILE, lines, problems, tempDir } from './config-helpers.ts';

const first = selfSignedCertificate();
const second = selfSignedCertificate();
after(() => {
  first.remove();
  second.remove();
});

describe('tls', () => {
  test('is disabled when absent', () => {
    const config = parseConfig(lines('secret: s', CLUSTER), FILE, {});
    assert.deepEqual(config.tls, { mode: 'disable' });
  });

  test('reads the certificate and key relative to the file', () => {
    const dir = tempDir();
    copyFileSync(first.cert, join(dir, 'server.crt'));
    copyFileSync(first.key, join(dir, 'server.key'));
    const text = lines(
      'secret: s',
      'tls:',
      '  mode: require',
      '  cert: server.crt',
      '  key: server.key',
      CLUSTER,
    );
    writeFileSync(join(dir, FILE), text);
    assert.deepEqual(loadConfig(join(dir, FILE), {}).tls, {
      mode: 'require',
      cert: join(dir, 'server.crt'),
      key: join(dir, 'server.key'),
    });
  });

  test('needs cert and key unless disabled, and says so at the tls mapping', () => {
    assert.deepEqual(problems(lines('secret: s', 'tls:', '  mode: allow', CLUSTER)), [
      'orchestrator.yml:3:3: tls.cert: required; a PEM file; `tls.mode: allow` needs a certificate and its key',
      'orchestrator.yml:3:3: tls.key: required; a PEM file; `tls.mode: allow` needs a certificate and its key',
    ]);
    const disabled = parseConfig(lines('secret: s', 'tls: { mode: disable }', CLUSTER), FILE, {});
    assert.deepEqual(disabled.tls, { mode: 'disable' });
  });

  test('names a wrong mode, a missing file, an unknown key and a key that does not match', () => {
    assert.deepEqual(problems(lines('secret: s', 'tls: { mode: prefer }', CLUSTER)), [
      'orchestrator.yml:2:14: tls.mode: expected one of `disable`, `allow`, `require`, got "prefer"',
    ]);
    const missing = problems(
      lines(
        'secret: s',
        'tls:',
        '  mode: require',
        '  cert: /nonexistent/c.pem',
        `  key: ${first.key}`,
        CLUSTER,
      ),
    );
    assert.deepEqual(missing, [
      'orchestrator.yml:4:9: tls.cert: no such file (looked for /nonexistent/c.pem)',
    ]);
    assert.deepEqual(problems(lines('secret: s', 'tls: { mod: require }', CLUSTER)), [
      'orchestrator.yml:2:8: tls.mod: unknown key; did you mean `mode`?',
    ]);
    const mismatch = problems(
      lines(
        'secret: s',
        'tls:',
        '  mode: allow',
        `  cert: ${first.cert}`,
        `  key: ${second.key}`,
        CLUSTER,
      ),
    );
    assert.equal(mismatch.length, 1);
    assert.match(
      mismatch[0] as string,
      /^orchestrator\.yml:4:9: tls\.cert: cannot be used with `tls\.key`: .*key values mismatch/,
    );
  });
});

describe('sessions.idle_in_transaction_timeout', () => {
  test('reads durations in ms, s, m and h, and off or 0 as no limit', () => {
    assert.equal(parseTimeout('500ms'), 500);
    assert.equal(parseTimeout('60s'), 60_000);
    assert.equal(parseTimeout('5m'), 300_000);
    assert.equal(parseTimeout('2h'), 7_200_000);
    assert.equal(parseTimeout('off'), 0);
    assert.equal(parseTimeout('0'), 0);
    assert.equal(parseTimeout('60'), undefined);
    const config = parseConfig(
      lines('secret: s', 'sessions: { idle_in_transaction_timeout: 60s }', CLUSTER),
      FILE,
      {},
    );
    assert.deepEqual(config.sessions, { idleInTransactionTimeoutMs: 60_000 });
    const absent = parseConfig(lines('secret: s', CLUSTER), FILE, {});
    assert.deepEqual(absent.sessions, { idleInTransactionTimeoutMs: 0 });
    const zero = parseConfig(
      lines('secret: s', 'sessions:', '  idle_in_transaction_timeout: 0', CLUSTER),
      FILE,
      {},
    );
    assert.deepEqual(zero.sessions, { idleInTransactionTimeoutMs: 0 });
  });

  test('names a value without a unit and an unknown key, with line and key path', () => {
    assert.deepEqual(
      problems(lines('secret: s', 'sessions:', '  idle_in_transaction_timeout: 60', CLUSTER)),
      [
        'orchestrator.yml:3:32: sessions.idle_in_transaction_timeout: expected a duration such as 60s, 500ms or 5m (at most 24 days), or off; got "60"',
      ],
    );
    assert.deepEqual(
      problems(lines('secret: s', 'sessions: { idle_in_transaction_timout: 1s }', CLUSTER)),
      [
        'orchestrator.yml:2:13: sessions.idle_in_transaction_timout: unknown key; did you mean `idle_in_transaction_timeout`?',
      ],
    );
  });
});
