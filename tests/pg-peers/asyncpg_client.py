"""asyncpg against the PostgreSQL endpoint, for
crates/databases/tests/postgres/asyncpg.rs. asyncpg speaks the extended
protocol with binary formats for everything it binds or fetches.

Usage: asyncpg_client.py URL SCENARIO; prints one JSON object.
Scenarios (the tests' cast: `bot` reads, `ci-bot` also writes; a
`DELETE` without `WHERE` is held for a dba, `DROP TABLE` is forbidden):
  read         rows, and a bound parameter
  prepared     one `conn.prepare()` statement executed many times
  drop         a forbidden statement (simple, then extended protocol):
               its SQLSTATE, and the session goes on
  delete       a held statement (prepared), run once approved
  transaction  a held statement inside `async with conn.transaction()`
"""

import asyncio
import json
import sys

import asyncpg

IDS = [i % 3 + 1 for i in range(25)]


async def connect(url, notices):
    conn = await asyncpg.connect(url, timeout=10)
    conn.add_log_listener(lambda _conn, message: notices.append(message.message))
    return conn


async def read(conn, _notices):
    rows = await conn.fetch("SELECT id, item FROM orders ORDER BY id")
    param = await conn.fetchval("SELECT item FROM orders WHERE id = $1", 2)
    return {"rows": [list(r) for r in rows], "param": param}


async def prepared(conn, _notices):
    statement = await conn.prepare("SELECT item FROM orders WHERE id = $1")
    items = [await statement.fetchval(i) for i in IDS]
    server_prepared = await conn.fetchval(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1 AND NOT from_sql",
        "SELECT item FROM orders WHERE id = $1",
    )
    return {"items": items, "server_prepared": server_prepared}


async def drop(conn, _notices):
    refused = {}
    for protocol, run in [("simple", conn.execute), ("extended", conn.fetch)]:
        try:
            await run("DROP TABLE orders")
            refused[protocol] = {"sqlstate": None}
        except asyncpg.PostgresError as e:
            refused[protocol] = {"sqlstate": e.sqlstate, "message": e.message, "detail": e.detail}
    return {**refused["extended"], "simple": refused["simple"], "after": await conn.fetchval("SELECT count(*) FROM orders")}


async def delete(conn, notices):
    statement = await conn.prepare("DELETE FROM orders")
    await statement.fetch()
    status = statement.get_statusmsg()
    return {"deleted": int(status.split()[-1]), "notices": notices}


async def transaction(conn, notices):
    async with conn.transaction():
        await conn.execute("INSERT INTO orders VALUES ($1, $2)", 4, "kiwi")
        status = await conn.execute("DELETE FROM orders")
        await conn.execute("INSERT INTO orders VALUES ($1, $2)", 5, "lime")
        inside = await conn.fetchval("SELECT count(*) FROM orders")
    return {"deleted": int(status.split()[-1]), "inside": inside, "notices": notices}


SCENARIOS = {f.__name__: f for f in [read, prepared, drop, delete, transaction]}


async def main(url, scenario):
    notices = []
    conn = await connect(url, notices)
    try:
        result = await SCENARIOS[scenario](conn, notices)
        # Log listeners are called soon after the notice, not at once.
        await asyncio.sleep(0)
        return result
    finally:
        await conn.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
