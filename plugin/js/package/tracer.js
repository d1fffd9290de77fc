// The tracer: one per server. Holds the core's `Tracer` (config, ids, record queue) and ships
// its batches to the collector's `POST /v1/records` with the same source and sequence headers,
// bounded queue, retries and drop counting as the proxy-wasm plugin (the shipper is the core's).
// Web APIs only (fetch, crypto, performance): the same code runs on Node and on edge runtimes.
import { Tracer } from "./gen/gatetrace_js.js";

const SOURCE_HEADER = "x-gatetrace-source";
const SEQUENCE_HEADER = "x-gatetrace-sequence";
const NDJSON = "application/x-ndjson";
const NODE = "node";
const EDGE = "edge";

/** Which runtime runs us: Node has `process.versions.node`, edge runtimes do not. */
function detectRuntime() {
  return typeof globalThis.process?.versions?.node === "string" ? NODE : EDGE;
}

/**
 * The wall clock in milliseconds since the epoch. Node: `performance` (sub-millisecond; the
 * core keeps microseconds). Edge runtimes: `Date.now()`, which moves only on I/O there (the
 * core keeps milliseconds, so records claim no more precision than the clock has).
 */
function clockFor(runtime) {
  if (runtime === NODE && typeof performance !== "undefined") {
    const origin = performance.timeOrigin;
    return () => origin + performance.now();
  }
  return () => Date.now();
}

export class GatetraceTracer {
  /** @param {import("./index.d.ts").TracerOptions} options */
  constructor(options = {}) {
    const config = options.config ?? {};
    const json = typeof config === "string" ? config : JSON.stringify(config);
    this.runtime = options.runtime ?? detectRuntime();
    this.now = options.now ?? clockFor(this.runtime);
    const salt = crypto.getRandomValues(new Uint8Array(32));
    // Throws on a bad config, naming the key: refuse to start, as the plugins do.
    this.core = new Tracer(json, this.runtime, salt, this.now());
    // `collectorUrl` without a path gets `collector.path`; with one it is taken as given.
    const url = new URL(options.collectorUrl ?? `http://${this.core.collectorAuthority}/`);
    if (url.pathname === "/") url.pathname = this.core.collectorPath;
    this.url = url.href;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const token = this.core.collectorToken;
    this.headers = { "content-type": NDJSON, [SOURCE_HEADER]: this.core.source };
    if (token) this.headers.authorization = `Bearer ${token}`;
    this.timeoutMs = this.core.timeoutMs;
    this.tickMs = this.core.tickMs;
    this.batchSize = this.core.batchSize;
    this.requestIdHeader = this.core.requestIdHeader;
    this.sending = new Set();
    this.onRecord = options.onRecord;
  }

  /** Ends `exchange` with `status` (undefined when no response went out) and queues its record. */
  finish(exchange, status) {
    this.core.finish(exchange, status, this.now());
    if (this.onRecord) this.onRecord(this.core.lastRecord);
  }

  /** Records waiting for a batch. */
  get queued() {
    return this.core.queued;
  }

  /** Records the collector acknowledged. */
  get delivered() {
    return this.core.delivered;
  }

  /** Records lost (queue overflow, retries exhausted, rejected batches). */
  get dropped() {
    return this.core.dropped;
  }

  /**
   * Sends what is due now (new batches, and retries of failed ones) and resolves when those
   * calls are answered. Never rejects.
   */
  async flush() {
    const batches = this.core.tick(this.now());
    const calls = batches.map((batch) => this.#send(batch));
    for (const call of calls) this.sending.add(call);
    await Promise.all(calls);
    for (const call of calls) this.sending.delete(call);
  }

  /**
   * Flushes until nothing is queued or in flight, or `deadlineMs` passed (shutdown). Retries
   * wait `retryMs` between rounds.
   */
  async drain(deadlineMs = this.timeoutMs * 2, retryMs = 100) {
    const end = Date.now() + deadlineMs;
    await Promise.all([...this.sending]);
    while ((this.core.queued > 0 || this.core.unsettled > 0) && Date.now() < end) {
      await this.flush();
      if (this.core.unsettled > 0) await new Promise((r) => setTimeout(r, retryMs));
    }
  }

  async #send(batch) {
    const callId = batch.callId;
    const headers = { ...this.headers, [SEQUENCE_HEADER]: batch.sequence };
    const body = batch.body;
    batch.free();
    let status = 0;
    try {
      const signal = typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(this.timeoutMs) : undefined;
      const response = await this.fetch(this.url, { method: "POST", headers, body, signal });
      status = response.status;
      // Read the answer so the connection is reusable.
      await response.arrayBuffer().catch(() => {});
    } catch {
      status = 0;
    }
    this.core.settle(callId, status);
  }
}

/** @param {import("./index.d.ts").TracerOptions} options */
export function createTracer(options) {
  return new GatetraceTracer(options);
}
