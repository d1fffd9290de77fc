// What the package exports, whatever the loader: the tracer and shipper, the Node middleware,
// the fetch-handler wrapper.
export { createTracer, GatetraceTracer } from "./tracer.js";
export { gatetrace, observeNode, shipOnNode } from "./node.js";
export { withGatetrace } from "./fetch.js";
