// The Node entry (`exports` condition `node`): reads the .wasm file beside this one and
// instantiates it synchronously, so the package is ready the moment the import resolves.
import { readFileSync } from "node:fs";
import { initSync } from "./gen/gatetrace_js.js";

initSync({ module: readFileSync(new URL("./gen/gatetrace_js_bg.wasm", import.meta.url)) });

export * from "./api.js";
