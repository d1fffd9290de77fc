// An MCP server on the official TypeScript SDK (Streamable HTTP, sessions) with the gatetrace
// middleware in front, sending its records to the collector. Run: `npm start` with
// PORT (default 3000), GATETRACE_COLLECTOR (default http://127.0.0.1:9464) and optionally
// GATETRACE_CONFIG (the plugins' JSON config).
import { randomUUID } from "node:crypto";
import express from "express";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { createTracer, gatetrace } from "gatetrace";

const config = process.env.GATETRACE_CONFIG ?? JSON.stringify({ service: "node-mcp", mcpRoutes: ["/mcp"] });
// A bad key throws here, naming it: the server refuses to start.
const tracer = createTracer({
  config,
  collectorUrl: process.env.GATETRACE_COLLECTOR ?? "http://127.0.0.1:9464",
});

/** One MCP server per session, with three tools: one that adds, one that fails, one that streams. */
function mcpServer() {
  const server = new McpServer(
    { name: "node-mcp-example", version: "0.1.0" },
    { capabilities: { logging: {} } },
  );
  server.registerTool(
    "add",
    { description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
  );
  server.registerTool(
    "fail",
    { description: "Always fails", inputSchema: { reason: z.string() } },
    async () => {
      throw new Error("the fail tool failed, as it always does");
    },
  );
  server.registerTool(
    "count",
    { description: "Counts to n, one log message per step", inputSchema: { n: z.number().int().max(20) } },
    async ({ n }, extra) => {
      for (let i = 1; i <= n; i += 1) {
        await extra.sendNotification({
          method: "notifications/message",
          params: { level: "info", data: `step ${i} of ${n}` },
        });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return { content: [{ type: "text", text: `counted to ${n}` }] };
    },
  );
  return server;
}

const transports = new Map();
const app = express();
app.use(gatetrace(tracer));
app.use(express.json());

app.post("/mcp", async (req, res) => {
  const id = req.headers["mcp-session-id"];
  let transport = typeof id === "string" ? transports.get(id) : undefined;
  if (!transport && !id && isInitializeRequest(req.body)) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => transports.set(sessionId, transport),
    });
    transport.onclose = () => transports.delete(transport.sessionId);
    await mcpServer().connect(transport);
  }
  if (!transport) {
    res.status(400).json({ jsonrpc: "2.0", error: { code: -32000, message: "no valid session" }, id: null });
    return;
  }
  // The body express.json() parsed: the transport never reads the request stream again.
  await transport.handleRequest(req, res, req.body);
});

const sessionRequest = async (req, res) => {
  const transport = transports.get(req.headers["mcp-session-id"]);
  if (!transport) {
    res.status(400).send("no valid session");
    return;
  }
  await transport.handleRequest(req, res);
};
app.get("/mcp", sessionRequest);
app.delete("/mcp", sessionRequest);

const port = Number(process.env.PORT ?? 3000);
app.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
