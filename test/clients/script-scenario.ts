/**
 * Runs a scenario program of another language (scripts/) through the proxy once, then checks
 * its steps as node tests. The program prints one JSON object per line: {"version"} first, then
 * {"step", "ok", "error"?} per step, and goes on after a failed step.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';
import {
  ALL_ROWS,
  appToken,
  assertBackendsEqual,
  backendRows,
  type RunResult,
  rollBackLastDelete,
  runBounded,
} from './common.ts';

type Step = { step: string; ok: boolean; error?: string };

export interface ScenarioScript {
  /** What the suite is called: `<title> through the proxy`. */
  title: string;
  /** Why the client cannot run here; the suite is skipped with it. */
  skip: string | undefined;
  table: string;
  command: string;
  args: string[];
  /** Extra environment; QO_HOST, QO_PORT, QO_TOKEN, QO_DB and QO_TABLE are set here. */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Test titles and the steps each one checks, in order; `last-change` comes last on its own. */
  tests: [title: string, steps: string[]][];
}

export function describeScenarioScript(script: ScenarioScript): void {
  describe(`${script.title} through the proxy`, { skip: script.skip ?? false }, () => {
    let tc: TestCluster;
    let run: RunResult;
    let version = '';
    const steps = new Map<string, Step>();
    before(async () => {
      tc = await startTestCluster();
      run = await runBounded(script.command, script.args, {
        env: {
          ...script.env,
          QO_HOST: '127.0.0.1',
          QO_PORT: String(tc.proxyPort),
          QO_TOKEN: await appToken(tc, script.table),
          QO_DB: tc.cluster,
          QO_TABLE: script.table,
        },
        timeoutMs: script.timeoutMs ?? 60_000,
      });
      for (const line of run.stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line) as Step & { version?: string };
        if (parsed.version !== undefined) version = parsed.version;
        else steps.set(parsed.step, parsed);
      }
    });
    after(() => tc?.stop());

    const check = (name: string) => {
      const found = steps.get(name);
      const output = `exit ${run.code}${run.timedOut ? ' (killed: timed out)' : ''}\n${run.stderr}`;
      assert.ok(found, `the program did not reach step "${name}": ${output}`);
      assert.ok(found.ok, `step "${name}": ${found.error}`);
    };

    script.tests.forEach(([title, names], index) => {
      it(title, (t) => {
        if (index === 0) t.diagnostic(version || '(the program printed no version)');
        for (const name of names) check(name);
      });
    });
    it('rolls the last change back through the admin API', async () => {
      check('last-change');
      await rollBackLastDelete(tc, script.table);
      assert.deepEqual(await backendRows(tc, 1, script.table), ALL_ROWS);
      await assertBackendsEqual(tc);
      assert.equal(run.code, 0, run.stderr);
    });
  });
}
