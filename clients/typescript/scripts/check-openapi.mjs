// `npm run check:openapi`: when the repository has `openapi.json` (the contract as the server
// generates it), generate TypeScript types from it with openapi-typescript and type-check that
// src/wire.ts agrees with them (scripts/openapi-agreement.ts). Skips, saying so, when the
// document is not there. OPENAPI_JSON=path checks another document (the tests use a fixture).
import { existsSync, mkdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, resolve, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const doc = process.env.OPENAPI_JSON ? resolve(process.env.OPENAPI_JSON) : resolve(root, "../../openapi.json");
const shown = relative(process.cwd(), doc) || doc;

if (!existsSync(doc)) {
  console.log(`check:openapi: SKIPPED — ${shown} does not exist in this checkout, so src/wire.ts is checked against nothing.`);
  console.log("check:openapi: it runs by itself once the repository commits openapi.json.");
  process.exit(0);
}

function run(what, command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`check:openapi: FAILED — ${what}`);
    process.exit(result.status ?? 1);
  }
}

mkdirSync(resolve(root, "generated"), { recursive: true });
const bin = (name) => resolve(root, "node_modules/.bin", name);
run(`openapi-typescript could not read ${shown}`, bin("openapi-typescript"), [doc, "-o", "generated/openapi.ts", "--silent"]);
run(
  `src/wire.ts disagrees with ${shown}: update wire.ts (and the SDK) to the contract`,
  bin("tsc"),
  ["-p", "tsconfig.openapi.json"],
);
console.log(`check:openapi: OK — src/wire.ts agrees with ${shown}`);
