// Drives the example server with the SDK's client (a session, tools/list, tool calls: two
// that add, one that fails, one that streams log messages), then ends the session. Prints
// what it saw as one JSON line. Usage: node test/client.mjs http://127.0.0.1:PORT/mcp
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

/** Runs the scripted session against `url` (with `fetch` when given); returns what it saw. */
export async function session(url, options = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(url), options);
  const client = new Client({ name: "gatetrace-e2e", version: "0.1.0" });
  const logs = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(n.params.data);
  });
  await client.connect(transport);
  const listed = await client.listTools();
  const text = (result) => result.content?.[0]?.text;
  const added = [];
  for (const [a, b] of [[2, 3], [40, 2]]) {
    added.push(text(await client.callTool({ name: "add", arguments: { a, b } })));
  }
  // The argument is a planted secret: it must appear in no record.
  const failed = await client.callTool({ name: "fail", arguments: { reason: "ARGSECRET" } });
  const counted = options.streaming === false ? undefined
    : await client.callTool({ name: "count", arguments: { n: 3 } });
  const sessionId = transport.sessionId;
  if (sessionId) await transport.terminateSession();
  await client.close();
  return {
    session: sessionId ?? null,
    tools: listed.tools.map((t) => t.name).sort(),
    added,
    failIsError: failed.isError === true,
    counted: counted ? text(counted) : null,
    logs,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await session(process.argv[2])));
}
