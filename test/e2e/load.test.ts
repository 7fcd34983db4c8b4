import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../harness/cluster.ts';

const CLIENTS = 16;
const DURATION_MS = process.env['CI'] === 'true' ? 30_000 : 10_000;
/** A statement that takes longer has hung: the test fails instead of waiting. */
const STATEMENT_TIMEOUT_MS = 20_000;
const ACCOUNTS = 100;
const INITIAL_BALANCE = 1_000;

/**
 * Columns whose value each backend would compute by itself. Each is one line here, added once
 * the proxy makes such values identical on every backend; the history table and its INSERT
 * take them from this list.
 */
const VOLATILE_COLUMNS: { name: string; type: string; value: string }[] = [
  // { name: 'at', type: 'timestamptz', value: 'now()' },
  // { name: 'r', type: 'float8', value: 'random()' },
  // { name: 'u', type: 'uuid', value: 'gen_random_uuid()' },
];

/**
 * SQLSTATEs a client of a busy database must expect and retry: a deadlock victim, a
 * serialization failure.
 */
const RETRYABLE = new Set(['40P01', '40001']);

interface Tally {
  transfers: number;
  accounts: number;
  reads: number;
  retried: Record<string, number>;
  failures: string[];
}

/** A small deterministic generator per client (mulberry32), so a failing run can be replayed. */
function generator(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % below) | 0;
  };
}

describe('16 clients under load through the proxy', () => {
  let tc: TestCluster;
  before(async () => {
    tc = await startTestCluster();
    const setup = await tc.client();
    const extra = VOLATILE_COLUMNS.map((c) => `, ${c.name} ${c.type}`).join('');
    await setup.query(
      `CREATE TABLE accounts (id serial PRIMARY KEY, balance int NOT NULL, owner text NOT NULL)`,
    );
    await setup.query(
      `CREATE TABLE history (id serial PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL, client int NOT NULL, seq int NOT NULL${extra})`,
    );
    await setup.query(
      `INSERT INTO accounts (balance, owner) SELECT ${INITIAL_BALANCE}, 'owner ' || i FROM generate_series(1, ${ACCOUNTS}) i`,
    );
  });
  after(() => tc?.stop());

  async function client(): Promise<pg.Client> {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: tc.proxyPort,
      user: 'load',
      password: tc.adminToken,
      database: tc.cluster,
      query_timeout: STATEMENT_TIMEOUT_MS,
    });
    c.on('error', () => {});
    await c.connect();
    return c;
  }

  async function work(index: number, deadline: number, tally: Tally): Promise<void> {
    const c = await client();
    const next = generator(index + 1);
    const names = VOLATILE_COLUMNS.map((col) => `, ${col.name}`).join('');
    const values = VOLATILE_COLUMNS.map((col) => `, ${col.value}`).join('');
    let seq = 0;
    try {
      while (Date.now() < deadline && tally.failures.length === 0) {
        const pick = next(10);
        seq++;
        try {
          if (pick < 7) {
            const src = 1 + next(ACCOUNTS);
            const dst = 1 + ((src + next(ACCOUNTS - 1)) % ACCOUNTS);
            const amount = 1 + next(50);
            await c.query('BEGIN');
            await c.query(`UPDATE accounts SET balance = balance - ${amount} WHERE id = ${src}`);
            await c.query(`UPDATE accounts SET balance = balance + ${amount} WHERE id = ${dst}`);
            await c.query(
              `INSERT INTO history (src, dst, amount, client, seq${names}) VALUES (${src}, ${dst}, ${amount}, ${index}, ${seq}${values})`,
            );
            await c.query('COMMIT');
            tally.transfers++;
          } else if (pick < 9) {
            // A serial key drawn concurrently with other sessions; a zero balance keeps the sum.
            await c.query(
              `INSERT INTO accounts (balance, owner) VALUES (0, 'client ${index} #${seq}')`,
            );
            tally.accounts++;
          } else {
            await c.query(`SELECT balance FROM accounts WHERE id = $1`, [1 + next(ACCOUNTS)]);
            tally.reads++;
          }
        } catch (error) {
          const code = (error as { code?: string }).code ?? '';
          await c.query('ROLLBACK').catch(() => {});
          if (RETRYABLE.has(code)) {
            tally.retried[code] = (tally.retried[code] ?? 0) + 1;
          } else {
            tally.failures.push(`client ${index}: ${code} ${(error as Error).message}`);
          }
        }
      }
    } finally {
      await c.end().catch(() => {});
    }
  }

  it(`keeps both backends identical, audits every change once and preserves the balance sum (${DURATION_MS / 1000} s)`, async () => {
    const tally: Tally = { transfers: 0, accounts: 0, reads: 0, retried: {}, failures: [] };
    const deadline = Date.now() + DURATION_MS;
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => work(i, deadline, tally)));
    const summary = JSON.stringify({ ...tally, failures: tally.failures.length });
    assert.deepEqual(tally.failures.slice(0, 10), [], summary);
    assert.ok(tally.transfers > 0, `no transfer committed: ${summary}`);

    const sums = [await tc.checksums(0), await tc.checksums(1)];
    assert.deepEqual(sums[1], sums[0], 'the backends differ');
    for (const index of [0, 1]) {
      const direct = await tc.direct(index);
      const total = await direct.query(
        'SELECT sum(balance)::int AS sum, count(*)::int AS n FROM accounts',
      );
      assert.deepEqual(total.rows[0], {
        sum: ACCOUNTS * INITIAL_BALANCE,
        n: ACCOUNTS + tally.accounts,
      });
      const history = await direct.query('SELECT count(*)::int AS n FROM history');
      assert.equal(history.rows[0].n, tally.transfers, 'one history row per committed transfer');
      const prepared = await direct.query('SELECT count(*)::int AS n FROM pg_prepared_xacts');
      assert.equal(prepared.rows[0].n, 0, 'no prepared transaction is left');
      await direct.end();
    }

    // One committed audit entry per committed change: three per transfer, one per new account.
    const config = tc.orchestrator.config.catalog;
    assert.equal(config.kind, 'postgres');
    const catalog = new pg.Client({
      connectionString: config.kind === 'postgres' ? config.url : '',
    });
    await catalog.connect();
    try {
      const audited = await catalog.query(
        `SELECT regexp_replace(sql, '^(\\w+)\\s+(INTO\\s+)?(\\w+).*$', '\\1 \\3') AS what, count(*)::int AS n
           FROM qo.audit_entries
          WHERE cluster = $1 AND outcome = 'committed' AND kind = 'write'
          GROUP BY 1 ORDER BY 1`,
        [tc.cluster],
      );
      const counts = Object.fromEntries(audited.rows.map((row) => [row.what, row.n]));
      assert.deepEqual(counts, {
        'INSERT accounts': 1 + tally.accounts,
        'INSERT history': tally.transfers,
        'UPDATE accounts': 2 * tally.transfers,
      });
      const perTransaction = await catalog.query(
        `SELECT count(*)::int AS n FROM (
           SELECT transaction FROM qo.audit_entries
            WHERE cluster = $1 AND outcome = 'committed' AND sql LIKE 'INSERT INTO history%'
            GROUP BY transaction HAVING count(*) <> 1) t`,
        [tc.cluster],
      );
      assert.equal(perTransaction.rows[0].n, 0, 'a transfer was audited more than once');
    } finally {
      await catalog.end();
    }

    const check = await tc.admin('GET', `/clusters/${tc.cluster}/consistency`);
    assert.equal(check.body.status, 'consistent', JSON.stringify(check.body));
    process.stderr.write(`load: ${summary}\n`);
  });
});
