// The web entry (`exports` conditions `workerd` and `default`): imports the .wasm as a module
// (workerd, Vercel Edge, bundlers; a bundler's binary loader gives bytes, also accepted) and
// instantiates it synchronously. No Node API.
import wasm from "./gen/gatetrace_js_bg.wasm";
import { initSync } from "./gen/gatetrace_js.js";

initSync({ module: wasm });

export * from "./api.js";
