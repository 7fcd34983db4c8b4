import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { ConfigError } from '../../src/config/errors.ts';
import { parseConfig } from '../../src/config/load.ts';

export const FILE = 'orchestrator.yml';
export const lines = (...text: string[]): string => `${text.join('\n')}\n`;

/** The formatted problems of a file that must not load, one per line of the error. */
export function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(text, FILE, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.message.split('\n');
  }
  assert.fail('the configuration loaded, but should not have');
}

/** A valid `clusters:` section to complete files whose subject is elsewhere. */
export const CLUSTER = lines('clusters:', '  demo:', '    embedded: 1');

/** A directory removed after the test file has run. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qo-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
