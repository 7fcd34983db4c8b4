import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackendConnection } from '../../proxy/backend-connection.ts';
import { fanoutError } from '../../proxy/fanout-error.ts';
import {
  INSTANCE,
  inFlight,
  MONITOR_APPLICATION,
  monitorInstance,
  ownerOf,
} from '../../proxy/instance.ts';
import { mayResolve } from '../../proxy/recovery.ts';
import { type Collected, collected } from '../../proxy/results.ts';
import { SqlError } from '../../src/errors.ts';

const TXN = '0123456789abcdef0123456789abcdef';

describe('which prepared transactions recovery may finish', () => {
  it('reads the instance out of a gid and of a monitor connection', () => {
    assert.equal(ownerOf(`qo_${INSTANCE}_${TXN}`), INSTANCE);
    assert.equal(ownerOf(`qo_${TXN}`), undefined);
    assert.equal(monitorInstance(MONITOR_APPLICATION), INSTANCE);
    assert.equal(monitorInstance('psql'), undefined);
  });

  it('leaves this process its own commits in flight, and finishes the ones it gave up', () => {
    const gid = `qo_${INSTANCE}_${TXN}`;
    inFlight.add(gid);
    try {
      assert.equal(mayResolve({ gid, ageSeconds: 0 }, new Set()), 'no');
    } finally {
      inFlight.delete(gid);
    }
    assert.equal(mayResolve({ gid, ageSeconds: 0 }, new Set([INSTANCE])), 'yes');
  });

  it('leaves a running instance its commits, and finishes at once those of an instance that is gone', () => {
    const gid = `qo_0badcafe_${TXN}`;
    assert.equal(mayResolve({ gid, ageSeconds: 3600 }, new Set(['0badcafe'])), 'no');
    assert.equal(mayResolve({ gid, ageSeconds: 0 }, new Set([INSTANCE])), 'yes');
  });

  it('finishes an undecided one of an unknown instance only once it is a minute old', () => {
    const gid = `qo_${TXN}`;
    assert.equal(mayResolve({ gid, ageSeconds: 10 }, new Set()), 'undecided');
    assert.equal(mayResolve({ gid, ageSeconds: 60 }, new Set()), 'yes');
  });
});

describe('the error of a change that failed on some backends', () => {
  const backends = [{ name: 'c/0' }, { name: 'c/1' }] as BackendConnection[];
  const failing = (error: SqlError | null): Collected => ({ ...collected(), error });
  const duplicate = () =>
    new SqlError('23505', 'duplicate key value violates unique constraint "t_pkey"');

  it('is PostgreSQL’s own error when every backend failed alike', () => {
    const error = duplicate();
    assert.equal(fanoutError(backends, [failing(error), failing(duplicate())]), error);
    assert.equal(fanoutError(backends, [failing(null), failing(null)]), undefined);
  });

  it('names the backend, keeping the SQLSTATE, when only one failed', () => {
    const error = fanoutError(backends, [failing(null), failing(duplicate())]);
    assert.equal(error?.code, '23505');
    assert.match(error?.message ?? '', /^backend c\/1: duplicate key/);
    assert.match(error?.detail ?? '', /failed on c\/1 only \(c\/0 succeeded\)/);
  });
});
