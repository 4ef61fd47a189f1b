// A real MCP client (the TypeScript SDK) driven line by line by the Rust
// tests; the same line protocol as py_client.py.
//   node ts_client.mjs stdio COMMAND [ARG...]
//   node ts_client.mjs http URL          (token in MCP_BEARER)
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const [mode, target, ...rest] = process.argv.slice(2);

let transport;
if (mode === "stdio") {
  const env = { ...getDefaultEnvironment() };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith("COUNTERSIGN_") || k === "RUST_LOG") env[k] = v;
  transport = new StdioClientTransport({ command: target, args: rest, env, stderr: "inherit" });
} else {
  transport = new StreamableHTTPClientTransport(new URL(target), {
    requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_BEARER ?? ""}` } },
  });
}
const client = new Client({ name: "countersign-test-ts", version: "1.0.0" });
client.onerror = () => {};
await client.connect(transport);
say({ op: "ready", protocol: transport.protocolVersion ?? null });

const calls = new Map();
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const cmd = JSON.parse(line);
  if (cmd.op === "list") {
    try {
      const res = await client.listTools();
      say({ op: "list", tools: res.tools.map((t) => t.name) });
    } catch (e) {
      say({ op: "error", tag: "list", message: String(e?.message ?? e) });
    }
  } else if (cmd.op === "call") {
    const abort = new AbortController();
    calls.set(cmd.tag, abort);
    const seen = [];
    client
      .callTool({ name: cmd.name, arguments: cmd.args ?? {} }, undefined, {
        signal: abort.signal,
        timeout: 300000,
        resetTimeoutOnProgress: true,
        onprogress: cmd.progress ? (p) => seen.push(p.message ?? null) : undefined,
      })
      .then((res) => {
        const text = (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
        say({ op: "result", tag: cmd.tag, isError: !!res.isError, text, progress: seen });
      })
      .catch((e) => {
        if (abort.signal.aborted) say({ op: "cancelled", tag: cmd.tag });
        else say({ op: "error", tag: cmd.tag, message: String(e?.message ?? e) });
      });
  } else if (cmd.op === "cancel") {
    calls.get(cmd.tag)?.abort("cancelled by the test");
  } else if (cmd.op === "quit") {
    break;
  }
}
await client.close();
process.exit(0);
