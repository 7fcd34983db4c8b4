// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the test writes the ${VAR} syntax of configuration files
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseArgs, runCli, UsageError } from '../../src/cli.ts';
import type { ConsistencyReport } from '../../src/cluster/consistency.ts';

const temp = mkdtempSync(join(tmpdir(), 'qo-cli-check-'));
after(() => rmSync(temp, { recursive: true, force: true }));
const CONFIG = join(temp, 'qo.yml');
writeFileSync(
  CONFIG,
  'secret: ${QO_SECRET:-dev-secret}\nclusters:\n  prod:\n    backends:\n      - { host: 127.0.0.1, port: 1, user: app, name: prod/0 }\n',
);

const report = (status: ConsistencyReport['status']): ConsistencyReport => ({
  cluster: 'prod',
  backends: ['prod/0', 'prod/1'],
  status,
  tables: 2,
  differences:
    status === 'different'
      ? [
          {
            table: 'public.t',
            rows: { 'prod/0': 2, 'prod/1': 1 },
            chunks: { differing: 1, total: 1 },
            keys: [{ key: { id: '2' }, missingOn: ['prod/1'], differsOn: [] }],
          },
        ]
      : [],
  unreachable: [],
  durationMs: 3,
});

async function run(argv: string[], status: ConsistencyReport['status']) {
  let stdout = '';
  const asked: (string | undefined)[] = [];
  const code = await runCli(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: () => {},
    env: {},
    start: async () => {},
    check: async (_config, cluster, options) => {
      asked.push(cluster, String(options.chunkRows));
      return [report(status)];
    },
  });
  return { code, stdout, asked };
}

describe('the check command', () => {
  test('parses its options', () => {
    assert.deepEqual(
      parseArgs(['check', '-c', 'x.yml', '--cluster', 'prod', '--chunk-rows', '500', '--json']),
      {
        kind: 'check',
        config: 'x.yml',
        configGiven: true,
        cluster: 'prod',
        chunkRows: 500,
        json: true,
      },
    );
    assert.throws(() => parseArgs(['check', '--chunk-rows', '0']), UsageError);
    assert.throws(() => parseArgs(['check', '--sub', 'x']), UsageError);
  });

  test('exits 0 when the backends agree and 1 with what differs when they do not', async () => {
    const same = await run(['check', '-c', CONFIG], 'consistent');
    assert.equal(same.code, 0);
    assert.match(same.stdout, /^cluster prod: 2 tables on prod\/0, prod\/1: consistent/);
    const differ = await run(
      ['check', '-c', CONFIG, '--cluster', 'prod', '--chunk-rows', '7'],
      'different',
    );
    assert.equal(differ.code, 1);
    assert.deepEqual(differ.asked, ['prod', '7']);
    assert.equal(
      differ.stdout,
      [
        'cluster prod: 2 tables on prod/0, prod/1: 1 of them differ (3 ms)',
        '  public.t: rows prod/0=2 prod/1=1; 1 of 1 chunks differ',
        '    id=2: missing on prod/1',
        '',
      ].join('\n'),
    );
  });
});
