// Benchmark suite `npm-package` (issue 15's JSON format): the npm package's size, and the
// microseconds one MCP exchange costs in Node — through the core alone and through the Node
// middleware (fake request/response objects, so only the package's own work is timed).
// Usage: node plugin/js/bench/bench.mjs --json <path> --short|--full
// The package is read from target/wasm/npm/gatetrace (`cargo xtask wasm`), or
// GATETRACE_NPM_PACKAGE.
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { EventEmitter } from "node:events";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const jsonPath = args[args.indexOf("--json") + 1];
if (!args.includes("--json") || !jsonPath) throw new Error("usage: bench.mjs --json <path> --short|--full");
const full = args.includes("--full");
const ROUNDS = full ? 7 : 3;
const EXCHANGES = full ? 20000 : 3000;

const root = fileURLToPath(new URL("../../../", import.meta.url));
const pkg = process.env.GATETRACE_NPM_PACKAGE ?? join(root, "target/wasm/npm/gatetrace");
const gt = await import(pathToFileURL(join(pkg, "load-node.js")).href);

/** Files of the package as npm would pack them (everything in the laid-out directory). */
function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}
const wasm = readFileSync(join(pkg, "gen/gatetrace_js_bg.wasm"));
const all = files(pkg);
const packageBytes = all.reduce((sum, p) => sum + statSync(p).size, 0);
const packageGzip = all.reduce((sum, p) => sum + gzipSync(readFileSync(p)).length, 0);

const CONFIG = { service: "bench", mcpRoutes: ["/mcp"], collector: { queueCapacity: 1000000, batchSize: 1000 } };
const CALL = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "add", arguments: { a: 1, b: 2 } } });
const ANSWER = `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "3" }] } })}\n\n`;
const RAW_HEADERS = [
  "host", "127.0.0.1:3000", "content-type", "application/json", "accept", "application/json, text/event-stream",
  "content-length", String(CALL.length), "mcp-session-id", "5d3c0f7e-8c0b-4a57-9d0e-2f1b8e1c2a11",
  "mcp-protocol-version", "2025-11-25", "user-agent", "node",
];
const encoder = new TextEncoder();
const answerBytes = encoder.encode(ANSWER);
const callBody = JSON.parse(CALL);

/** Drops the queued batches now and then, as the shipper would send them. */
function drain(tracer) {
  for (const batch of tracer.core.tick(Date.now())) {
    tracer.core.settle(batch.callId, 200);
    batch.free();
  }
}

/** µs per exchange through the core's lifecycle alone. */
function coreRound(tracer) {
  const core = tracer.core;
  const headers = RAW_HEADERS.join("\n");
  const started = performance.now();
  for (let i = 0; i < EXCHANGES; i += 1) {
    const ex = core.begin("POST", "/mcp", "127.0.0.1:3000", undefined, headers, tracer.now());
    ex.requestBody(encoder.encode(CALL));
    core.responseHeaders(ex, 200, "content-type\ntext/event-stream\nmcp-session-id\n5d3c0f7e-8c0b-4a57-9d0e-2f1b8e1c2a11");
    core.responseChunk(ex, answerBytes);
    core.finish(ex, 200, tracer.now());
    if (i % 500 === 499) drain(tracer);
  }
  const took = performance.now() - started;
  drain(tracer);
  return (took * 1000) / EXCHANGES;
}

/** A request and response shaped like Node's, with what the middleware touches. */
class FakeResponse extends EventEmitter {
  constructor() {
    super();
    this.statusCode = 200;
    this.headersSent = false;
    this.headers = {};
  }
  setHeader(name, value) { this.headers[name.toLowerCase()] = value; }
  getHeaders() { return this.headers; }
  writeHead(status, headers) { this.statusCode = status; Object.assign(this.headers, headers); this.headersSent = true; return this; }
  write() { return true; }
  end() { this.emit("finish"); return this; }
}

/** µs per exchange through the Node middleware (request edits, tee, finish). */
function middlewareRound(tracer, observe) {
  const started = performance.now();
  for (let i = 0; i < EXCHANGES; i += 1) {
    const req = { method: "POST", url: "/mcp", headers: { host: "127.0.0.1:3000" }, rawHeaders: RAW_HEADERS, socket: {}, body: callBody };
    const res = new FakeResponse();
    observe(req, res);
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(ANSWER);
    res.end();
    if (i % 500 === 499) drain(tracer);
  }
  const took = performance.now() - started;
  drain(tracer);
  return (took * 1000) / EXCHANGES;
}

const tracer = gt.createTracer({ config: CONFIG, collectorUrl: "http://127.0.0.1:9/" });
const observe = gt.gatetrace(tracer, { ship: false });
coreRound(tracer);
middlewareRound(tracer, observe); // warm-up
const core = [];
const middleware = [];
for (let round = 0; round < ROUNDS; round += 1) {
  // Interleaved: both see the same machine state in each round.
  core.push(coreRound(tracer));
  middleware.push(middlewareRound(tracer, observe));
}

const round2 = (x) => Math.round(x * 100) / 100;
const result = {
  suite: "npm-package",
  title: "npm package (Node and edge runtimes)",
  notes: [
    `Node ${process.version}; ${EXCHANGES} MCP tools/call exchanges per round (SSE answer scanned), ${ROUNDS} interleaved rounds`,
    "core: the wasm core's lifecycle alone; middleware: the Node middleware around fake request/response objects (no sockets), batches settled in-process",
  ],
  figures: [
    { group: "Package size", name: ".wasm module", unit: "bytes", samples: [wasm.length], machine_dependent: false },
    { group: "Package size", name: "whole package", unit: "bytes", samples: [packageBytes], machine_dependent: false },
    { group: "Package size", name: "whole package, gzip per file", unit: "bytes", samples: [packageGzip], machine_dependent: false },
    { group: "Per exchange in Node", name: "core lifecycle (MCP tools/call)", unit: "µs", samples: core.map(round2), machine_dependent: true },
    { group: "Per exchange in Node", name: "Node middleware (MCP tools/call)", unit: "µs", samples: middleware.map(round2), machine_dependent: true },
    { group: "Per exchange in Node", name: "Node middleware vs core lifecycle", unit: "ratio", samples: middleware.map((m, i) => round2(m / core[i])), machine_dependent: false },
  ],
  curves: [],
};
writeFileSync(jsonPath, JSON.stringify(result, null, 2));
for (const f of result.figures) console.log(`${f.group} / ${f.name}: ${f.samples.join(", ")} ${f.unit}`);
