// Runs `edge-worker.mjs` in a web-only runtime (@edge-runtime/vm: the Web APIs of Vercel's
// Edge runtime, no Node API) and drives it with the SDK's client through a `fetch` that calls
// the worker's handler; every `ctx.waitUntil` promise is awaited, as the runtime would, before
// the run ends. Bundling for the browser platform with the `workerd`/`worker` conditions also
// proves no Node-only module is needed. Prints what the client saw as one JSON line.
// Usage: node test/edge.mjs <collector origin> '<config JSON>'
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { EdgeVM } from "@edge-runtime/vm";
import { session } from "./client.mjs";

const [collector, config] = process.argv.slice(2);
const bundled = await build({
  entryPoints: [fileURLToPath(new URL("./edge-worker.mjs", import.meta.url))],
  bundle: true,
  write: false,
  format: "iife",
  globalName: "worker",
  platform: "browser",
  conditions: ["workerd", "worker", "browser"],
  loader: { ".wasm": "binary" },
  logLevel: "error",
});
const vm = new EdgeVM();
vm.evaluate(bundled.outputFiles[0].text);
const handler = vm.evaluate("worker.default");
if (vm.evaluate("typeof process") !== "undefined" && vm.evaluate("typeof process.versions?.node") === "string") {
  throw new Error("the edge VM exposes Node's process");
}
const env = { GATETRACE_COLLECTOR: collector, GATETRACE_CONFIG: config };
const waits = [];
const ctx = { waitUntil: (promise) => waits.push(promise) };

async function edgeFetch(url, init = {}) {
  const request = vm.evaluate("(u, i) => new Request(u, i)")(String(url), {
    method: init.method ?? "GET",
    headers: Object.fromEntries(new Headers(init.headers)),
    body: init.body,
  });
  const response = await handler.fetch(request, env, ctx);
  // Read whole here, inside the runtime's realm; the worker's tee already saw it stream.
  const body = await response.arrayBuffer();
  const headers = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  return new Response(response.status === 204 || response.status === 202 ? null : body, {
    status: response.status,
    headers,
  });
}

const seen = await session("http://edge.example/mcp", { fetch: edgeFetch });
for (let settled = 0; settled < waits.length; settled = waits.length) {
  await Promise.allSettled(waits.slice(settled));
}
console.log(JSON.stringify({ ...seen, waitUntil: waits.length }));
