// node-postgres (npm `pg`) against the PostgreSQL endpoint, for
// crates/databases/tests/postgres/node_pg.rs.
//
// Usage: node pg_client.mjs URL SCENARIO; prints one JSON object.
// Scenarios (the tests' cast: `bot` reads, `ci-bot` also writes; a
// `DELETE` without `WHERE` is held for a dba, `DROP TABLE` is forbidden):
//   read         rows (simple protocol), and a parameterized query (extended)
//   prepared     a named prepared statement (`{name: ...}`) executed many times
//   drop         a forbidden statement: its SQLSTATE, and the session goes on
//   delete       a held statement, run once approved
//   transaction  a held statement inside BEGIN … COMMIT

import pg from "pg";

const IDS = Array.from({ length: 25 }, (_, i) => (i % 3) + 1);

const scenarios = {
  async read(client) {
    const rows = await client.query({ text: "SELECT id, item FROM orders ORDER BY id", rowMode: "array" });
    const param = await client.query("SELECT item FROM orders WHERE id = $1", [2]);
    return { rows: rows.rows, param: param.rows[0].item, ssl: Boolean(client.connection.stream.encrypted) };
  },
  async prepared(client) {
    const items = [];
    for (const id of IDS) {
      const r = await client.query({ name: "item-by-id", text: "SELECT item FROM orders WHERE id = $1", values: [id] });
      items.push(r.rows[0].item);
    }
    const held = await client.query(
      "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = $1 AND NOT from_sql",
      ["SELECT item FROM orders WHERE id = $1"],
    );
    return { items, server_prepared: held.rows[0].n };
  },
  async drop(client) {
    let refused = { sqlstate: null };
    try {
      await client.query("DROP TABLE orders");
    } catch (e) {
      refused = { sqlstate: e.code, message: e.message, detail: e.detail };
    }
    const after = await client.query("SELECT count(*)::int AS n FROM orders");
    return { ...refused, after: after.rows[0].n };
  },
  async delete(client, notices) {
    const r = await client.query("DELETE FROM orders");
    return { deleted: r.rowCount, notices };
  },
  async transaction(client, notices) {
    await client.query("BEGIN");
    await client.query("INSERT INTO orders VALUES ($1, $2)", [4, "kiwi"]);
    const r = await client.query("DELETE FROM orders");
    await client.query("INSERT INTO orders VALUES ($1, $2)", [5, "lime"]);
    const inside = await client.query("SELECT count(*)::int AS n FROM orders");
    await client.query("COMMIT");
    return { deleted: r.rowCount, inside: inside.rows[0].n, notices };
  },
};

const [url, scenario] = process.argv.slice(2);
const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10000 });
const notices = [];
client.on("notice", (n) => notices.push(n.message));
await client.connect();
try {
  console.log(JSON.stringify(await scenarios[scenario](client, notices)));
} finally {
  await client.end();
}
