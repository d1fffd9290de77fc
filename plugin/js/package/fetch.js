// The `fetch`-handler wrapper for edge runtimes (`(request, env, ctx) => Promise<Response>`):
// `request.clone()` gives the JSON-RPC body without taking the app's, a `TransformStream` tees
// the response body past the core as it streams (nothing held back), and the record's batch
// goes out through `ctx.waitUntil()`: there are no timers or I/O outside a request and no
// shutdown hook on these runtimes. What an evicted isolate loses: records still queued or
// waiting for a retry when it goes (each is sent at the end of its own exchange, so that is
// only a batch whose call failed, or records of exchanges still streaming).

/** Headers as `name\nvalue` lines. */
function headerLines(headers) {
  const lines = [];
  for (const [name, value] of headers) lines.push(name, value);
  return lines.join("\n");
}

/** A copy of `headers` with the core's `op, name, value` edits applied. */
function edited(headers, edits) {
  const out = new Headers(headers);
  for (let i = 0; i + 2 < edits.length; i += 3) {
    if (edits[i] === "set") out.set(edits[i + 1], edits[i + 2]);
    else out.delete(edits[i + 1]);
  }
  return out;
}

/**
 * Wraps a `fetch` handler: ids and trace context on the request the handler sees, the echoed
 * request id on the response, the record queued when the body ends and shipped through
 * `ctx.waitUntil` (every `flushEvery` records; default 1).
 * @param {(request: Request, env: unknown, ctx: any) => Promise<Response>} handler
 * @param {import("./tracer.js").GatetraceTracer} gt
 */
export function withGatetrace(handler, gt, options = {}) {
  const flushEvery = Math.max(1, options.flushEvery ?? 1);
  let unflushed = 0;
  const core = gt.core;
  const recorded = (exchange, status, ctx) => {
    gt.finish(exchange, status);
    unflushed += 1;
    if (unflushed >= flushEvery || core.unsettled > 0) {
      unflushed = 0;
      const sent = gt.flush();
      if (typeof ctx?.waitUntil === "function") ctx.waitUntil(sent);
      return sent;
    }
    return Promise.resolve();
  };

  return async function gatetraceFetch(request, env, ctx) {
    const url = new URL(request.url);
    let lines = headerLines(request.headers);
    // A `Request` built in the runtime (or a chunked upload) may carry no `Content-Length`,
    // which the core needs to read a JSON-RPC body: a JSON POST is read from a clone first
    // and its length added (the handler still gets the body, untouched).
    let body;
    if (
      request.body &&
      request.method === "POST" &&
      !request.headers.has("content-length") &&
      (request.headers.get("content-type") ?? "").includes("json")
    ) {
      try {
        body = new Uint8Array(await request.clone().arrayBuffer());
        lines += `\ncontent-length\n${body.length}`;
      } catch {
        body = undefined;
      }
    }
    const exchange = core.begin(
      request.method,
      url.pathname + url.search,
      url.host,
      undefined,
      lines,
      gt.now(),
    );
    if (exchange.requestBodyWanted !== undefined && request.body) {
      try {
        body ??= new Uint8Array(await request.clone().arrayBuffer());
        exchange.requestBody(body);
      } catch {
        // An unreadable body leaves the header facts; the app's copy is untouched.
      }
    }
    const forwarded = new Request(request, {
      headers: edited(request.headers, exchange.requestEdits),
    });
    let response;
    try {
      response = await handler(forwarded, env, ctx);
    } catch (error) {
      recorded(exchange, undefined, ctx);
      throw error;
    }
    const headers = edited(response.headers, exchange.responseEdits);
    const status = response.status;
    core.responseHeaders(exchange, status, headerLines(headers));
    if (!response.body || !exchange.responseBodyWanted) {
      const out = new Response(response.body, { status, statusText: response.statusText, headers });
      if (!response.body) {
        recorded(exchange, status, ctx);
      } else {
        // Not scanned, but the record waits for the end of the body (its duration).
        const { readable, writable } = new TransformStream();
        const piped = response.body.pipeTo(writable).then(
          () => recorded(exchange, status, ctx),
          () => recorded(exchange, status, ctx),
        );
        ctx?.waitUntil?.(piped);
        return new Response(readable, { status, statusText: response.statusText, headers });
      }
      return out;
    }
    const tee = new TransformStream({
      transform(chunk, controller) {
        controller.enqueue(chunk);
        if (chunk instanceof Uint8Array) core.responseChunk(exchange, chunk);
      },
    });
    const piped = response.body.pipeTo(tee.writable).then(
      () => recorded(exchange, status, ctx),
      () => recorded(exchange, status, ctx),
    );
    ctx?.waitUntil?.(piped);
    return new Response(tee.readable, { status, statusText: response.statusText, headers });
  };
}
