/** The psycopg scenario (scripts/psycopg_scenario.py) for psycopg 2 and psycopg 3. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { commandVersion, SCRIPTS } from './common.ts';
import { describeScenarioScript } from './script-scenario.ts';

// Debian's interpreter, which the python3-psycopg2 and python3-psycopg packages serve; the
// `python3` on PATH may be another one (pyenv) without them.
const PYTHON = '/usr/bin/python3';

/** Why the driver cannot run here, or undefined when it can. */
function missing(module: string): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} is not installed`;
  if (commandVersion(PYTHON, ['-c', `import ${module}; print('ok')`]) !== 'ok') {
    return `${PYTHON} cannot import ${module} (Debian package python3-${module} is not installed)`;
  }
  return undefined;
}

export function describePsycopg(driver: 'psycopg2' | 'psycopg', title: string): void {
  describeScenarioScript({
    title,
    skip: missing(driver),
    table: `${driver}_items`,
    command: PYTHON,
    args: [path.join(SCRIPTS, 'psycopg_scenario.py')],
    env: { QO_DRIVER: driver, PYTHONDONTWRITEBYTECODE: '1' },
    tests: [
      ['connects with a token and creates a table', ['connect', 'create']],
      ['runs parameterized INSERT, UPDATE and DELETE inside a transaction', ['transaction']],
      ['reuses a prepared statement for the same query', ['prepared']],
      ['sends several statements in one round trip (batch or pipeline mode)', ['pipeline']],
      ['reads a named (server-side) cursor in batches', ['server-cursor']],
      ['reports a failing statement, and the connection works after ROLLBACK', ['failure']],
    ],
  });
}
