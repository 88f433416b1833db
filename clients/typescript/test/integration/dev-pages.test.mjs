// The local server's pages for the account page example: the page, the built SDK, the dev
// token, and nothing else from disk.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { ContactChannelsClient } from "../../dist/index.js";
import { startServer } from "../support/local-server.mjs";

let api;
before(async () => {
  api = await startServer();
});
after(async () => {
  await api?.stop();
});

test("the account page, its script and the built SDK are served with their content types", async () => {
  for (const [path, type, text] of [
    ["/_dev/account?user=alice", "text/html", "importmap"],
    ["/_dev/account/app.js", "text/javascript", "ContactChannelsClient"],
    ["/_dev/account/style.css", "text/css", "[hidden]"],
    ["/_dev/account/verify.html", "text/html", "verify.js"],
    ["/_dev/account/verify.js", "text/javascript", "verifyEmailLink"],
    ["/_dev/sdk/index.js", "text/javascript", "ContactChannelsClient"],
    ["/_dev/sdk/email-address.js", "text/javascript", "createEmailLinkFlow"],
  ]) {
    const answer = await fetch(api.base + path);
    assert.equal(answer.status, 200, path);
    assert.ok(answer.headers.get("content-type").startsWith(type), `${path}: ${answer.headers.get("content-type")}`);
    assert.ok((await answer.text()).includes(text), path);
  }
});

test("no other file is served: traversal, dot files and unknown names are 404 JSON errors", async () => {
  for (const path of ["/_dev/sdk/..%2Fpackage.json", "/_dev/sdk/.gitignore", "/_dev/account/..%2F..%2FCargo.toml", "/_dev/sdk/nope.js"]) {
    const answer = await fetch(api.base + path);
    assert.equal(answer.status, 404, path);
    assert.equal(answer.headers.get("x-known-error"), "NOT_FOUND", path);
  }
  assert.equal((await fetch(`${api.base}/_dev/account`, { method: "POST" })).status, 405);
});

test("/_dev/token mints a client token for the user that the API accepts, and refuses a bad user id", async () => {
  const answer = await fetch(`${api.base}/_dev/token?user=page-user`);
  assert.equal(answer.status, 200);
  const { token, user_id } = await answer.json();
  assert.equal(user_id, "page-user");
  const me = new ContactChannelsClient({ baseUrl: api.base, getAccessToken: () => token }).currentUser();
  const channel = await me.createContactChannel({ type: "email", value: "page@example.com", usedForAuth: false });
  assert.equal(channel.userId, "page-user");
  const bad = await fetch(`${api.base}/_dev/token?user=${encodeURIComponent("no spaces")}`);
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get("x-known-error"), "SCHEMA_ERROR");
});
