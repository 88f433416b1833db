// The OpenAPI agreement check itself: it passes on a document that matches the contract and
// fails on one where the server renamed a field, so it can catch a contract change.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const check = (doc) =>
  spawnSync(process.execPath, ["scripts/check-openapi.mjs"], {
    cwd: root,
    env: { ...process.env, OPENAPI_JSON: doc },
    encoding: "utf8",
  });

test("check:openapi accepts a document that matches the contract, and rejects one that drifted", () => {
  const ok = check("test/fixtures/openapi.contract.json");
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /OK/);
  const drifted = check("test/fixtures/openapi.drifted.json");
  assert.notEqual(drifted.status, 0, drifted.stdout);
  assert.match(drifted.stderr, /disagrees/);
});

test("check:openapi skips with a clear message when the document is absent", () => {
  const skipped = check("test/fixtures/no-such-openapi.json");
  assert.equal(skipped.status, 0);
  assert.match(skipped.stdout, /SKIPPED .* does not exist/);
});
