// Builds a JavaScript UDF into a WebAssembly component with ComponentizeJS, against wit/weir-udf.wit.
//
// Usage (from the repository's root): node scripts/componentize-js.mjs <app.js> <world> <out.wasm>
//
// ComponentizeJS comes from npm, installed once by .ci/install-guest-toolchains into
// ~/.cache/weir/componentize-js-0.23.0 (COMPONENTIZE_JS overrides the folder). Its `http` and
// `fetch-event` features are left out: they would make the component import wasi:http, which a Weir UDF
// may not (docs/components.md, the sandbox).
import { writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [source, world, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node scripts/componentize-js.mjs <app.js> <world> <out.wasm>");
  process.exit(2);
}
const home = process.env.COMPONENTIZE_JS ?? join(homedir(), ".cache/weir/componentize-js-0.23.0");
const entry = join(home, "node_modules/@bytecodealliance/componentize-js/src/componentize.js");
const { componentize } = await import(pathToFileURL(entry).href);
const { component } = await componentize({
  sourcePath: source,
  witPath: "wit",
  worldName: world,
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
