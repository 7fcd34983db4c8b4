import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { commandVersion, SCRIPTS } from './common.ts';
import { describeScenarioScript } from './script-scenario.ts';

const JAR = '/usr/share/java/postgresql.jar';

function missing(): string | undefined {
  if (commandVersion('java', ['-version']) === undefined) {
    return 'java (a JDK 11+) is not installed';
  }
  // Single-file source mode compiles with the JDK's compiler module, which a JRE lacks.
  const modules = spawnSync('java', ['--list-modules'], { encoding: 'utf8', timeout: 20_000 });
  if (!modules.stdout?.includes('jdk.compiler@')) {
    return 'java is a runtime without the compiler (install a JDK, e.g. default-jdk-headless)';
  }
  if (!existsSync(JAR)) return `${JAR} is missing (Debian package libpostgresql-jdbc-java)`;
  return undefined;
}

// Single-file source mode compiles the program in memory: no build directory to clean.
describeScenarioScript({
  title: 'pgJDBC',
  skip: missing(),
  table: 'jdbc_items',
  command: 'java',
  args: ['-cp', JAR, path.join(SCRIPTS, 'JdbcScenario.java')],
  tests: [
    ['connects with a token and creates a table', ['connect', 'create']],
    [
      'runs parameterized INSERT, UPDATE and DELETE with autocommit off, and reads them back',
      ['transaction'],
    ],
    ['switches to a named server-side statement after prepareThreshold executions', ['prepared']],
    ['reads with setFetchSize(5) and autocommit off (Execute with a row limit)', ['fetch-size']],
    ['reports a failing statement, and the connection works after rollback()', ['failure']],
  ],
});
