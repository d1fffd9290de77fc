// Parity input: replays recorded MCP exchanges (tests/e2e/mcp/recorded.ndjson, the same ones
// the harness's Traefik, Envoy and Kong profiles replay) through a plain `http` server wrapped
// by the package, over real loopback HTTP. The server answers each with the recorded status,
// content type and headers, and the body the harness's backend gives. Prints the records the
// package made (its `onRecord` copy), in order, as one JSON array.
// Usage: node test/replay.mjs <recorded.ndjson> '<config JSON>'
import { readFileSync } from "node:fs";
import http from "node:http";
import { createTracer, gatetrace } from "gatetrace";

const [recordedPath, config] = process.argv.slice(2);
const MCP_ACCEPT = "application/json, text/event-stream";
const recorded = readFileSync(recordedPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const records = [];
const tracer = createTracer({ config, onRecord: (line) => records.push(JSON.parse(line)) });
const observe = gatetrace(tracer, { ship: false });

/** The answer the harness's backend gives to `r` (see tests/e2e/tests/mcp_profiles.rs). */
function answerBody(r) {
  let id;
  try {
    id = JSON.parse(r.body).id;
  } catch {
    id = undefined;
  }
  if (id === undefined || id === null || r.status !== 200) return "";
  const result = JSON.stringify({ jsonrpc: "2.0", id, result: { content: [] } });
  return r.content_type === "text/event-stream" ? `event: message\r\ndata: ${result}\r\n\r\n` : result;
}

let current;
const server = http.createServer((req, res) => {
  observe(req, res);
  // A plain `http` app reads its own body and sets `req.body` before answering.
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const text = Buffer.concat(chunks).toString("utf8");
    try {
      req.body = text ? JSON.parse(text) : undefined;
    } catch {
      req.body = text;
    }
    const r = current;
    res.statusCode = r.status;
    res.setHeader("content-type", r.content_type);
    for (const [name, value] of Object.entries(r.answer_headers ?? {})) res.setHeader(name, value);
    const body = answerBody(r);
    if (r.content_type === "text/event-stream") {
      res.write(body);
      res.end();
    } else {
      res.end(body);
    }
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address();

for (const r of recorded) {
  current = r;
  const headers = {
    host: "127.0.0.1:8080",
    authorization: "Bearer recorded-token",
    accept: r.method === "GET" ? "text/event-stream" : MCP_ACCEPT,
  };
  if (r.method === "POST") {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(r.body));
  }
  Object.assign(headers, r.headers);
  await new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: r.method, path: r.path, headers }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.end(r.method === "POST" ? r.body : undefined);
  });
  // The record is queued when the response finishes on the server side.
  while (records.length < recorded.indexOf(r) + 1) await new Promise((res) => setTimeout(res, 5));
}
server.close();
console.log(JSON.stringify(records));
