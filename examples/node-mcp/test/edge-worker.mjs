// The fetch-handler form: a Workers-style module around the SDK's web-standard transport,
// wrapped by `withGatetrace`. Bundled for a web-only runtime (no Node API): stateless, one
// server and transport per request, JSON answers except for the streaming tool.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";
import { createTracer, withGatetrace } from "gatetrace";

function mcpServer() {
  const server = new McpServer({ name: "edge-mcp-example", version: "0.1.0" }, { capabilities: { logging: {} } });
  server.registerTool("add", { inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    content: [{ type: "text", text: String(a + b) }],
  }));
  server.registerTool("fail", { inputSchema: { reason: z.string() } }, async () => {
    throw new Error("the fail tool failed, as it always does");
  });
  server.registerTool("count", { inputSchema: { n: z.number().int().max(20) } }, async ({ n }, extra) => {
    for (let i = 1; i <= n; i += 1) {
      await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: `step ${i} of ${n}` } });
    }
    return { content: [{ type: "text", text: `counted to ${n}` }] };
  });
  return server;
}

async function mcp(request) {
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  await mcpServer().connect(transport);
  return transport.handleRequest(request);
}

let tracer;
let handler;
export default {
  fetch(request, env, ctx) {
    tracer ??= createTracer({ config: env.GATETRACE_CONFIG, collectorUrl: env.GATETRACE_COLLECTOR });
    handler ??= withGatetrace(mcp, tracer);
    return handler(request, env, ctx);
  },
  /** What the shipper did, for the test (not part of a real worker). */
  stats: () => ({ delivered: tracer.delivered, dropped: tracer.dropped, queued: tracer.queued, runtime: tracer.runtime, url: tracer.url }),
};
