// Types of the gatetrace package (both loaders export the same API).

/** The parts of Node's `IncomingMessage` the middleware uses (no `@types/node` needed). */
export interface NodeRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  socket?: { remoteAddress?: string };
  /** The parsed JSON-RPC body (`express.json()`, or the `parsedBody` you hand the transport). */
  body?: unknown;
}

/** The parts of Node's `ServerResponse` the middleware uses. */
export interface NodeResponse {
  statusCode: number;
  headersSent: boolean;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  getHeaders(): Record<string, unknown>;
  writeHead(...args: any[]): unknown;
  write(...args: any[]): boolean;
  end(...args: any[]): unknown;
  once(event: "finish" | "close", listener: () => void): unknown;
}

/** What `createTracer` takes. */
export interface TracerOptions {
  /**
   * The plugins' JSON config, as an object or a JSON string (`service`, `mcpRoutes`,
   * `collector`, …). A bad key throws at start, naming the key.
   */
  config?: Record<string, unknown> | string;
  /** Where batches go: a full URL, or an origin that gets `collector.path` (`/v1/records`). */
  collectorUrl?: string;
  /**
   * `"node"` (microsecond clock) or `"edge"` (`Date.now()`, which moves only on I/O there:
   * records keep milliseconds). Default: `"node"` when `process.versions.node` exists.
   */
  runtime?: "node" | "edge";
  /** The `fetch` batches are sent with (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** The wall clock in milliseconds since the epoch (default: see `runtime`). */
  now?: () => number;
  /** Called with each record's NDJSON line as it is queued (a local copy; optional). */
  onRecord?: (line: string) => void;
}

/** One server's gatetrace: config, ids, record queue and its shipping. */
export declare class GatetraceTracer {
  constructor(options?: TracerOptions);
  readonly runtime: "node" | "edge";
  /** Where batches are `POST`ed. */
  readonly url: string;
  /** Records waiting for a batch. */
  readonly queued: number;
  /** Records the collector acknowledged. */
  readonly delivered: number;
  /** Records lost (queue overflow, retries exhausted, rejected batches). */
  readonly dropped: number;
  /** Ends an exchange the core began (used by the middleware and the fetch wrapper). */
  finish(exchange: unknown, status?: number): void;
  /** Sends what is due now; resolves when those calls are answered. Never rejects. */
  flush(): Promise<void>;
  /** Flushes until nothing is queued or in flight, or the deadline passed. */
  drain(deadlineMs?: number, retryMs?: number): Promise<void>;
}

export declare function createTracer(options?: TracerOptions): GatetraceTracer;

type NodeNext = (error?: unknown) => void;

/**
 * Express/Connect middleware, or `gatetrace(tracer)(req, res)` in a plain `http` handler.
 * Never reads the request stream: the JSON-RPC body is taken from `req.body` when the
 * response starts (`express.json()`, or set it to the `parsedBody` you hand the transport).
 */
export declare function gatetrace(
  tracer: GatetraceTracer,
  options?: { ship?: boolean },
): (req: any, res: any, next?: NodeNext) => void;

/** Watches one request/response pair; returns the request id in effect. */
export declare function observeNode(
  tracer: GatetraceTracer,
  req: NodeRequest,
  res: NodeResponse,
): string | undefined;

/** Timer shipping plus a drain on `beforeExit` and `SIGTERM`; `stop()` drains and detaches. */
export declare function shipOnNode(tracer: GatetraceTracer): { stop(): Promise<void> };

/** The execution context of a `fetch` handler (Workers-style). */
export interface WaitUntilContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** Wraps a `fetch` handler; records are shipped through `ctx.waitUntil`. */
export declare function withGatetrace<Env = unknown, Ctx extends WaitUntilContext = WaitUntilContext>(
  handler: (request: Request, env: Env, ctx: Ctx) => Promise<Response> | Response,
  tracer: GatetraceTracer,
  options?: { flushEvery?: number },
): (request: Request, env: Env, ctx: Ctx) => Promise<Response>;
