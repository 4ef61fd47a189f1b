"""psycopg 3 against the PostgreSQL endpoint, for
crates/databases/tests/postgres/psycopg.rs.

Usage: psycopg_client.py CONNINFO SCENARIO; prints one JSON object.
Scenarios (the tests' cast: `bot` reads, `ci-bot` also writes; a
`DELETE` without `WHERE` is held for a dba, `DROP TABLE` is forbidden):
  read         rows in text and in binary, and a bound parameter
  prepared     one server-side prepared statement executed many times
  drop         a forbidden statement: its SQLSTATE, and the session goes on
  delete       a held statement (prepared), run once approved
  transaction  a held statement inside a transaction block, then COMMIT
"""

import json
import sys

import psycopg

IDS = [i % 3 + 1 for i in range(25)]


def connect(conninfo, notices, **kwargs):
    conn = psycopg.connect(conninfo, connect_timeout=10, **kwargs)
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    return conn


def read(conninfo):
    with connect(conninfo, [], autocommit=True) as conn:
        rows = conn.execute("SELECT id, item FROM orders ORDER BY id").fetchall()
        with conn.cursor(binary=True) as cur:
            binary = cur.execute("SELECT id, item FROM orders ORDER BY id").fetchall()
        param = conn.execute("SELECT item FROM orders WHERE id = %s", (2,)).fetchone()[0]
        return {"rows": rows, "binary_rows": binary, "param": param, "ssl": conn.pgconn.ssl_in_use}


def server_prepared(execute):
    """How many protocol-level prepared statements of the item query the
    database session holds (it is the gateway's one upstream session)."""
    query = "SELECT count(*) FROM pg_prepared_statements WHERE statement = %s AND NOT from_sql"
    return execute(query, ("SELECT item FROM orders WHERE id = $1",)).fetchone()[0]


def prepared(conninfo):
    # Every statement prepared on the server at once, and this one
    # also asked for explicitly: Parse once, then Bind/Execute each time.
    with connect(conninfo, [], autocommit=True, prepare_threshold=0) as conn:
        items = [
            conn.execute("SELECT item FROM orders WHERE id = %s", (i,), prepare=True).fetchone()[0]
            for i in IDS
        ]
        return {"items": items, "server_prepared": server_prepared(conn.execute)}


def drop(conninfo):
    with connect(conninfo, [], autocommit=True) as conn:
        try:
            conn.execute("DROP TABLE orders")
            refused = {"sqlstate": None}
        except psycopg.Error as e:
            refused = {"sqlstate": e.sqlstate, "message": e.diag.message_primary, "detail": e.diag.message_detail}
        refused["after"] = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        return refused


def delete(conninfo):
    notices = []
    with connect(conninfo, notices, autocommit=True, prepare_threshold=0) as conn:
        cur = conn.execute("DELETE FROM orders", prepare=True)
        return {"deleted": cur.rowcount, "notices": notices}


def transaction(conninfo):
    notices = []
    with connect(conninfo, notices) as conn:
        # Not in autocommit: psycopg opens the transaction block itself.
        conn.execute("INSERT INTO orders VALUES (%s, %s)", (4, "kiwi"))
        deleted = conn.execute("DELETE FROM orders").rowcount
        conn.execute("INSERT INTO orders VALUES (%s, %s)", (5, "lime"))
        inside = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        conn.commit()
        return {"deleted": deleted, "inside": inside, "notices": notices}


SCENARIOS = {f.__name__: f for f in [read, prepared, drop, delete, transaction]}

if __name__ == "__main__":
    conninfo, scenario = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[scenario](conninfo)))
