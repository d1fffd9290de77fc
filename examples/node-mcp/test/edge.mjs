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
  const headers = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  if (!response.body) return new Response(null, { status: response.status, headers });
  // The body streams across the realms; the client's abort (closing the standalone GET
  // stream) cancels it in the runtime, as a client disconnect would.
  const reader = response.body.getReader();
  init.signal?.addEventListener("abort", () => void reader.cancel().catch(() => {}));
  const body = new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read().catch(() => ({ done: true }));
      if (done) controller.close();
      else controller.enqueue(new Uint8Array(value));
    },
    cancel: () => reader.cancel().catch(() => {}),
  });
  return new Response(body, { status: response.status, headers });
}

const seen = await session("http://edge.example/mcp", { fetch: edgeFetch });
for (let settled = 0; settled < waits.length; settled = waits.length) {
  await Promise.allSettled(waits.slice(settled));
}
console.log(JSON.stringify({ ...seen, waitUntil: waits.length, shipper: handler.stats() }));
