// The Node client of the HTTP proxy tests: the built-in `fetch`, as an
// agent uses it, against the gateway. Usage: node client.mjs BASE KEY.
// Prints one JSON object: a GET, an SSE stream read as it comes (with
// when each part came), a request policy forbids, and one without a key.
const [base, key] = process.argv.slice(2);
const auth = { authorization: `Bearer ${key}` };
const out = {};

let r = await fetch(`${base}/http/items/items/1`, { headers: auth });
out.get = { status: r.status, body: await r.json(), request: r.headers.get("countersign-request") };

r = await fetch(`${base}/http/items/events?count=3&every=0.3`, { headers: { ...auth, accept: "text/event-stream" } });
out.sse_status = r.status;
const started = Date.now();
const parts = [];
const decoder = new TextDecoder();
for await (const chunk of r.body) {
  parts.push({ at: Date.now() - started, text: decoder.decode(chunk) });
}
out.sse = parts;

r = await fetch(`${base}/http/items/items/protected`, { method: "DELETE", headers: auth });
out.denied = { status: r.status, body: await r.json() };

r = await fetch(`${base}/http/items/items/1`);
out.anonymous = { status: r.status, body: await r.json() };

console.log(JSON.stringify(out));
