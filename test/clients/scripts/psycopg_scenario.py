"""The client-compatibility scenario with psycopg 2 or psycopg 3, through the proxy.

Run with Debian's /usr/bin/python3. Environment: QO_DRIVER (psycopg2 or psycopg), QO_HOST,
QO_PORT, QO_TOKEN (the JWT, sent as the password), QO_DB (the cluster), QO_TABLE; QO_USER
(default app) lets the script run straight against PostgreSQL, to tell client from proxy.

Prints one JSON object per line: first {"version": ...}, then {"step", "ok", "error"?} for each
step. A failed step is reported and the connection rolled back, so later steps still run.
"""

import json
import os
import sys
import traceback

DRIVER = os.environ["QO_DRIVER"]
TABLE = os.environ["QO_TABLE"]

if DRIVER == "psycopg2":
    import psycopg2 as driver
    from psycopg2 import errors

    VERSION = "psycopg2 %s, libpq %s" % (driver.__version__, driver.extensions.libpq_version())
else:
    import psycopg as driver
    from psycopg import errors

    VERSION = "psycopg %s, libpq %s" % (driver.__version__, driver.pq.version())

ROWS_AFTER_TRANSACTION = [(1, "one", 10), (2, "two", 25)]
PREPARED_ROWS = [(4, "four", 40), (5, "five", 50), (6, "six", 60), (7, "seven", 70)]
ALL_ROWS = ROWS_AFTER_TRANSACTION + PREPARED_ROWS


def emit(**fields):
    print(json.dumps(fields), flush=True)


def check(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def connect():
    return driver.connect(
        host=os.environ["QO_HOST"],
        port=int(os.environ["QO_PORT"]),
        user=os.environ.get("QO_USER", "app"),
        password=os.environ["QO_TOKEN"],
        dbname=os.environ["QO_DB"],
        connect_timeout=10,
    )


def all_rows(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT id, name, qty FROM %s ORDER BY id" % TABLE)
        rows = [tuple(row) for row in cur.fetchall()]
    conn.commit()
    return rows


def step_create(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE %s (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)" % TABLE)
    conn.commit()


def step_transaction(conn):
    # Both drivers open the transaction themselves (autocommit is off).
    with conn.cursor() as cur:
        for row in [(1, "one", 10), (2, "two", 20), (3, "three", 30)]:
            cur.execute("INSERT INTO " + TABLE + " VALUES (%s, %s, %s)", row)
            check(cur.rowcount, 1, "inserted")
        cur.execute("UPDATE " + TABLE + " SET qty = %s WHERE id = %s", (25, 2))
        check(cur.rowcount, 1, "updated")
        cur.execute("DELETE FROM " + TABLE + " WHERE id = %s", (3,))
        check(cur.rowcount, 1, "deleted")
    conn.commit()
    check(all_rows(conn), ROWS_AFTER_TRANSACTION, "rows after the transaction")


def step_prepared(conn):
    select = "SELECT id, name, qty FROM " + TABLE + " WHERE id = %s"
    with conn.cursor() as cur:
        if DRIVER == "psycopg2":
            # psycopg2 interpolates parameters itself; server-side reuse is PREPARE/EXECUTE.
            cur.executemany("INSERT INTO " + TABLE + " VALUES (%s, %s, %s)", PREPARED_ROWS)
            cur.execute("PREPARE item_by_id(int) AS SELECT id, name, qty FROM %s WHERE id = $1" % TABLE)
            for row in ALL_ROWS:
                cur.execute("EXECUTE item_by_id(%s)", (row[0],))
                check([tuple(r) for r in cur.fetchall()], [row], "prepared select")
            cur.execute("DEALLOCATE item_by_id")
        else:
            # prepare=True: a named server-side statement from the first execution on.
            for row in PREPARED_ROWS:
                cur.execute("INSERT INTO " + TABLE + " VALUES (%s, %s, %s)", row, prepare=True)
                check(cur.rowcount, 1, "prepared insert")
            # Default: psycopg prepares a query once it ran prepare_threshold (5) times.
            for _ in range(2):
                for row in ALL_ROWS:
                    cur.execute(select, (row[0],))
                    check([tuple(r) for r in cur.fetchall()], [row], "auto-prepared select")
    conn.commit()
    check(all_rows(conn), ALL_ROWS, "rows after the prepared inserts")


def step_pipeline(conn):
    if DRIVER == "psycopg2":
        from psycopg2.extras import execute_batch

        with conn.cursor() as cur:
            # Several statements in one round trip, then undone in one more.
            execute_batch(cur, "UPDATE " + TABLE + " SET qty = qty + %s WHERE id = %s", [(1, 1), (1, 2)])
            execute_batch(cur, "UPDATE " + TABLE + " SET qty = qty - %s WHERE id = %s", [(1, 1), (1, 2)])
        conn.commit()
    else:
        # Pipeline mode: libpq sends every query before reading any result.
        update = "UPDATE " + TABLE + " SET qty = qty + %s WHERE id = %s"
        with conn.pipeline() as pipeline:
            with conn.cursor() as cur:
                cur.executemany(update, [(1, 1), (1, 2)])
            total = conn.execute("SELECT sum(qty) FROM " + TABLE + " WHERE id IN (%s, %s)", (1, 2))
            with conn.cursor() as cur:
                cur.executemany(update, [(-1, 1), (-1, 2)])
            pipeline.sync()
            check(total.fetchone()[0], 37, "sum inside the pipeline")
        conn.commit()
    check(all_rows(conn), ALL_ROWS, "rows after the batch")


def step_server_cursor(conn):
    # A named cursor is DECLARE ... CURSOR and FETCH, inside a transaction.
    with conn.cursor(name="items_cursor") as cur:
        cur.itersize = 2
        cur.execute("SELECT id FROM " + TABLE + " WHERE qty >= %s ORDER BY id", (0,))
        batches = []
        while True:
            batch = cur.fetchmany(4)
            if not batch:
                break
            batches.append([row[0] for row in batch])
    conn.commit()
    check(batches, [[1, 2, 4, 5], [6, 7]], "batches of the named cursor")


def step_failure(conn):
    with conn.cursor() as cur:
        try:
            cur.execute("INSERT INTO " + TABLE + " VALUES (%s, %s, %s)", (1, "dup", 0))
            raise AssertionError("the duplicate key was accepted")
        except errors.UniqueViolation:
            pass
        try:
            cur.execute("SELECT 1")
            raise AssertionError("a statement ran in a failed transaction")
        except errors.InFailedSqlTransaction:
            pass
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM " + TABLE)
        check(cur.fetchone()[0], len(ALL_ROWS), "count after ROLLBACK")
    conn.commit()


def step_last_change(conn):
    with conn.cursor() as cur:
        cur.execute("DELETE FROM " + TABLE + " WHERE id = %s", (7,))
        check(cur.rowcount, 1, "deleted")
    conn.commit()


STEPS = [
    ("create", step_create),
    ("transaction", step_transaction),
    ("prepared", step_prepared),
    ("pipeline", step_pipeline),
    ("server-cursor", step_server_cursor),
    ("failure", step_failure),
    ("last-change", step_last_change),
]


def main():
    emit(version=VERSION)
    try:
        conn = connect()
    except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
        emit(step="connect", ok=False, error="%s: %s" % (type(error).__name__, error))
        return 1
    emit(step="connect", ok=True)
    for name, run in STEPS:
        try:
            run(conn)
            emit(step=name, ok=True)
        except Exception as error:  # noqa: BLE001
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            emit(step=name, ok=False, error=detail)
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - a broken connection: open another
                conn = connect()
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
