// Node: the middleware (Express-style `(req, res, next)`, or `observeNode(tracer, req, res)` from
// a plain `http` handler) and shipping on a timer with a flush on `beforeExit` and `SIGTERM`.
// It never reads the request stream (no `data` listener: that would steal the bytes the MCP
// SDK's transport reads); the JSON-RPC body comes from `req.body` (set by `express.json()`, or
// by the app to the `parsedBody` it hands to `transport.handleRequest(req, res, parsedBody)`)
// when the response starts. The response is watched by wrapping `writeHead`/`write`/`end` as a
// tee: every byte goes on at once, unchanged.

const encoder = new TextEncoder();

/** `req.body` as bytes: a string or bytes as they are, a parsed object as JSON again. */
function bodyBytes(body) {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  try {
    return encoder.encode(JSON.stringify(body));
  } catch {
    return undefined;
  }
}

/** Response headers as `name\nvalue` lines: those set on `res`, then those given to `writeHead`. */
function responseHeaderLines(res, given) {
  const lines = [];
  const push = (name, value) => {
    if (value === undefined) return;
    if (Array.isArray(value)) for (const v of value) lines.push(String(name), String(v));
    else lines.push(String(name), String(value));
  };
  for (const [name, value] of Object.entries(res.getHeaders())) push(name, value);
  if (Array.isArray(given)) {
    // `[name, value, name, value]` or `[[name, value], …]`
    if (Array.isArray(given[0])) for (const [n, v] of given) push(n, v);
    else for (let i = 0; i + 1 < given.length; i += 2) push(given[i], given[i + 1]);
  } else if (given && typeof given === "object") {
    for (const [name, value] of Object.entries(given)) push(name, value);
  }
  return lines.join("\n");
}

/** Chunk bytes as `write`/`end` received them. */
function chunkBytes(chunk, encoding) {
  if (chunk === undefined || chunk === null || typeof chunk === "function") return undefined;
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") {
    return typeof Buffer !== "undefined" && encoding && typeof encoding === "string"
      ? Buffer.from(chunk, encoding)
      : encoder.encode(chunk);
  }
  return undefined;
}

/**
 * Watches one request/response pair: sets the request id and trace context on `req.headers`
 * (what the app sees) and the echoed request id on the response, and queues the record when
 * the response finishes (or the connection closes). Returns the request id.
 * @param {import("./tracer.js").GatetraceTracer} gt
 */
export function observeNode(gt, req, res) {
  const core = gt.core;
  let exchange;
  try {
    exchange = core.begin(
      req.method ?? "GET",
      req.url ?? "/",
      req.headers.host,
      gt.recordClientAddr === false ? undefined : req.socket?.remoteAddress,
      req.rawHeaders.join("\n"),
      gt.now(),
    );
  } catch {
    return undefined;
  }
  const edits = exchange.requestEdits;
  for (let i = 0; i + 2 < edits.length; i += 3) {
    if (edits[i] === "set") req.headers[edits[i + 1]] = edits[i + 2];
    else delete req.headers[edits[i + 1]];
  }
  const echo = exchange.responseEdits;
  for (let i = 0; i + 2 < echo.length; i += 3) res.setHeader(echo[i + 1], echo[i + 2]);
  const requestId = exchange.requestId;

  let started = false;
  let scan = false;
  let done = false;
  const start = (given) => {
    if (started || done) return;
    started = true;
    if (exchange.requestBodyWanted !== undefined) {
      const body = bodyBytes(req.body);
      if (body) exchange.requestBody(body);
    }
    core.responseHeaders(exchange, res.statusCode, responseHeaderLines(res, given));
    scan = exchange.responseBodyWanted;
  };
  const tee = (chunk, encoding) => {
    if (!scan || done) return;
    const bytes = chunkBytes(chunk, encoding);
    if (bytes && bytes.length > 0) core.responseChunk(exchange, bytes);
  };
  const finish = () => {
    if (done) return;
    if (!started && res.headersSent) start(undefined);
    done = true;
    gt.finish(exchange, res.headersSent ? res.statusCode : undefined);
  };

  const { writeHead, write, end } = res;
  res.writeHead = function gatetraceWriteHead(status, ...rest) {
    const given = rest.length > 0 ? rest[rest.length - 1] : undefined;
    const result = writeHead.call(this, status, ...rest);
    start(typeof given === "string" ? undefined : given);
    return result;
  };
  res.write = function gatetraceWrite(chunk, encoding, callback) {
    start(undefined);
    tee(chunk, encoding);
    return write.call(this, chunk, encoding, callback);
  };
  res.end = function gatetraceEnd(chunk, encoding, callback) {
    start(undefined);
    tee(chunk, encoding);
    return end.call(this, chunk, encoding, callback);
  };
  res.once("finish", finish);
  res.once("close", finish);
  return requestId;
}

/**
 * The middleware: `app.use(gatetrace(tracer))` (Express, Connect) or
 * `gatetrace(tracer)(req, res)` first thing in a plain `http` handler. Starts shipping on Node
 * ([`shipOnNode`]) unless `{ ship: false }`.
 * @param {import("./tracer.js").GatetraceTracer} gt
 */
export function gatetrace(gt, options = {}) {
  if (options.ship !== false) shipOnNode(gt);
  return function gatetraceMiddleware(req, res, next) {
    observeNode(gt, req, res);
    if (typeof next === "function") next();
  };
}

const SHIPPING = Symbol("gatetrace.shipping");

/**
 * Ships on a timer every `collector.tickMs` (unref'd: it never keeps the process alive), and
 * drains the queue on `beforeExit` and `SIGTERM` (then exits, as Node's default `SIGTERM`
 * does, unless the app has its own `SIGTERM` listener). Idempotent.
 * @param {import("./tracer.js").GatetraceTracer} gt
 */
export function shipOnNode(gt) {
  if (gt[SHIPPING]) return gt[SHIPPING];
  const timer = setInterval(() => void gt.flush(), gt.tickMs);
  timer.unref?.();
  let draining;
  const drain = () => (draining ??= gt.drain().finally(() => (draining = undefined)));
  const onBeforeExit = () => {
    if (gt.queued > 0 || gt.core.unsettled > 0) void drain();
  };
  const onTerm = () => {
    void drain().finally(() => {
      if (process.listenerCount("SIGTERM") === 1) process.exit(143);
    });
  };
  process.on("beforeExit", onBeforeExit);
  process.on("SIGTERM", onTerm);
  const stop = () => {
    clearInterval(timer);
    process.off("beforeExit", onBeforeExit);
    process.off("SIGTERM", onTerm);
    gt[SHIPPING] = undefined;
    return drain();
  };
  gt[SHIPPING] = { stop };
  return gt[SHIPPING];
}
