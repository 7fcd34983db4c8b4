// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the tests write the ${VAR} syntax of configuration files
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { verifyToken } from '../../src/auth/tokens.ts';
import {
  type CliIo,
  DEFAULT_CONFIG,
  parseArgs,
  runCli,
  runTokenCommand,
  type TokenCommand,
  USAGE,
  UsageError,
} from '../../src/cli.ts';
import type { Config } from '../../src/config/types.ts';

const temp = mkdtempSync(join(tmpdir(), 'qo-cli-'));
after(() => rmSync(temp, { recursive: true, force: true }));
const CONFIG = join(temp, 'qo.yml');
writeFileSync(CONFIG, 'secret: ${QO_SECRET:-dev-secret}\nclusters:\n  prod:\n    embedded: 1\n');

/** Runs the command line and collects what it printed. */
async function run(argv: string[], io: Partial<CliIo> = {}) {
  let stdout = '';
  let stderr = '';
  const started: Config[] = [];
  const code = await runCli(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env: { QO_SECRET: 'cli-secret' },
    start: async (config) => {
      started.push(config);
    },
    ...io,
  });
  return { code, stdout, stderr, started };
}

describe('parseArgs', () => {
  test('start reads ./orchestrator.yml unless --config names a file', () => {
    assert.deepEqual(parseArgs(['start']), {
      kind: 'start',
      config: DEFAULT_CONFIG,
      configGiven: false,
    });
    for (const argv of [
      ['start', '--config', 'x.yml'],
      ['start', '--config=x.yml'],
      ['start', '-c', 'x.yml'],
    ]) {
      assert.deepEqual(parseArgs(argv), { kind: 'start', config: 'x.yml', configGiven: true });
    }
  });

  test('--help, -h and help ask for the usage, also after a command', () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['token', '--help'], ['start', '-h']]) {
      assert.deepEqual(parseArgs(argv), { kind: 'help' });
    }
  });

  test('token collects subject, clusters, admin and expiry', () => {
    const command = parseArgs([
      'token',
      '--config',
      'f.yml',
      '--sub',
      'alice',
      '--cluster',
      'prod=read,write',
      '--cluster=dev=admin',
      '--cluster',
      'prod=ddl',
      '--admin',
      '--expires',
      '1h',
    ]);
    assert.deepEqual(command, {
      kind: 'token',
      config: 'f.yml',
      configGiven: true,
      subject: 'alice',
      clusters: { prod: ['read', 'write', 'ddl'], dev: ['admin'] },
      admin: true,
      expiresIn: '1h',
    });
  });

  test('a token expires after 24 hours unless told otherwise', () => {
    const expiry = (extra: string[]) =>
      (parseArgs(['token', '--sub', 'a', '--admin', ...extra]) as TokenCommand).expiresIn;
    assert.equal(expiry([]), '24h');
    assert.equal(expiry(['--expires', '900']), '900');
    assert.equal(expiry(['--expires', 'never']), undefined);
  });

  test('wrong command lines say what is wrong', () => {
    const cases: [string[], string][] = [
      [[], 'no command given'],
      [['stop'], 'unknown command "stop"; expected start, token, check or rollback'],
      [['start', '--verbose'], 'unknown option --verbose for `start`'],
      [['start', '--sub', 'a'], 'unknown option --sub for `start`'],
      [['start', 'extra'], 'unexpected argument "extra"'],
      [['start', '--config'], '--config needs a value'],
      [['start', '--config', '--help'], '--config needs a value'],
      [['start', '-c', 'a', '-c', 'b'], '--config given 2 times'],
      [['token', '--admin'], 'token needs --sub NAME'],
      [['token', '--sub', 'a'], 'a token with no --cluster and no --admin would grant nothing'],
      [['token', '--sub', 'a', '--admin=yes'], '--admin takes no value'],
      [['token', '--sub', 'a', '--cluster', 'prod'], '--cluster "prod": expected NAME=PERM,PERM'],
      [['token', '--sub', 'a', '--cluster', 'prod='], '--cluster prod: no permission after ='],
      [
        ['token', '--sub', 'a', '--cluster', 'prod=read,wirte'],
        '--cluster prod: unknown permission "wirte" (known: read, write, ddl, rollback, admin)',
      ],
      [
        ['token', '--sub', 'a', '--admin', '--expires', 'soon'],
        '--expires "soon" is not a duration such as 3600, 15m, 1h, 7d or never',
      ],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parseArgs(argv), new UsageError(message), argv.join(' '));
    }
  });
});

describe('runCli', () => {
  test('an unknown flag prints the reason and the usage, and exits 2', async () => {
    const result = await run(['start', '--verbose']);
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      `query-orchestrator: unknown option --verbose for \`start\`\n\n${USAGE}`,
    );
    assert.equal(result.started.length, 0);
  });

  test('--help prints the usage and exits 0', async () => {
    const result = await run(['--help']);
    assert.deepEqual([result.code, result.stdout], [0, USAGE]);
  });

  test('start without --config and without ./orchestrator.yml says so', async () => {
    const result = await run(['start'], { cwd: temp });
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `no orchestrator.yml in ${temp}; pass --config FILE or create one\n`,
    );
  });

  test('start finds ./orchestrator.yml in the working directory', async () => {
    const dir = mkdtempSync(join(temp, 'cwd-'));
    writeFileSync(join(dir, DEFAULT_CONFIG), 'secret: s\nclusters: { demo: { embedded: 2 } }\n');
    const result = await run(['start'], { cwd: dir });
    assert.equal(result.code, 0);
    assert.equal(result.started[0]?.clusters[0]?.embedded, 2);
  });

  test('start with an invalid file prints every problem and exits 1', async () => {
    const bad = join(temp, 'bad.yml');
    writeFileSync(bad, 'secret: s\nlisen: 1\nclusters: { a: {} }\n');
    const result = await run(['start', '--config', bad]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `${bad}:2:1: lisen: unknown key; did you mean \`listen\`?\n` +
        `${bad}:3:13: clusters.a: no backend: give \`backends:\` (a list of databases) or \`embedded: N\`\n`,
    );
  });

  test('token prints a token signed with the configured secret', async () => {
    const result = await run(['token', '--config', CONFIG, '--sub', 'root', '--admin']);
    assert.equal(result.code, 0);
    assert.equal(result.stderr, '');
    const identity = await verifyToken(result.stdout.trim(), 'cli-secret');
    assert.equal(identity.subject, 'root');
    assert.equal(identity.admin, true);
    const hours = ((identity.exp ?? 0) * 1000 - Date.now()) / 3_600_000;
    assert.ok(hours > 23.9 && hours <= 24, `expires in ${hours} hours`);
  });

  test('token warns about a default secret and about clusters the file does not define', async () => {
    const command = parseArgs([
      'token',
      '-c',
      CONFIG,
      '--sub',
      'a',
      '--cluster',
      'nope=read',
      '--cluster',
      '*=read',
    ]);
    const { token, warnings } = await runTokenCommand(command as TokenCommand, {});
    assert.deepEqual(warnings, [
      `the secret in ${CONFIG} is a \${VAR:-default} default; set the variable before real use`,
      `cluster "nope" is not in ${CONFIG}`,
    ]);
    const identity = await verifyToken(token, 'dev-secret');
    assert.deepEqual({ ...identity.clusters }, { nope: ['read'], '*': ['read'] });
  });
});
