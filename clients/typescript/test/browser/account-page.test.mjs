// The account page example in a real headless Chromium (Debian's `chromium`, driven by
// puppeteer-core) against the real local server: add → code → verified, add → link flow →
// verified by clicking the link in /_dev/mailbox, make primary, an error shown, delete.
// Screenshots go to target/sdk-browser/ (SCREENSHOT_DIR overrides) for people to look at.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

import { startServer, mailTo, codeIn, unique } from "../support/local-server.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const repo = resolve(fileURLToPath(new URL("../../../..", import.meta.url)));
const shots = process.env.SCREENSHOT_DIR || join(repo, "target/sdk-browser");

let api;
let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (make test-sdk does it)`);
  mkdirSync(shots, { recursive: true });
  api = await startServer({ SEND_COOLDOWN_SECONDS: "0" });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await browser?.close();
  await api?.stop();
});

const row = (email) => `li[data-email="${email}"]`;
/** Whether a person sees the element (not just whether it has no `hidden` attribute). */
const visible = (page, selector) =>
  page.$eval(selector, (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden");

test("the account page adds, verifies by code and by link, makes primary, shows errors and deletes", async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 900 });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    // The page logs each error it shows; the ones this test provokes are expected.
    if (m.type() === "error" && !/VERIFICATION_CODE_INCORRECT|ContactChannelAlreadyExists|VerificationCodeIncorrect|status of 4\d\d/.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });
  const user = unique("browser");
  await page.goto(`${api.base}/_dev/account?user=${user}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 10_000 });
  assert.equal(await page.$eval("#user", (e) => e.textContent), user);
  assert.equal(await page.$eval("#empty", (e) => e.hidden), false, "an empty list says so");

  // Add → code → verified.
  const first = `${unique("first")}@example.com`;
  await page.type("#add-email", first);
  await page.click("#add button[type=submit]");
  await page.waitForSelector(`${row(first)}[data-status=unverified]`);
  assert.equal(await visible(page, `${row(first)} form.code`), false, "no code field before a code is sent");
  let since = Date.now() - 1000;
  await page.click(`${row(first)} [data-action=send-code]`);
  await page.waitForSelector(`${row(first)} form.code input`, { visible: true });
  const code = codeIn(await mailTo(api.base, first, since));
  // A wrong code first: the KnownError is shown readably.
  await page.type(`${row(first)} input[name=code]`, code === "000000" ? "111111" : "000000");
  await page.click(`${row(first)} [data-action=verify-code]`);
  await page.waitForSelector("#error", { visible: true });
  const shown = await page.$eval("#error", (e) => e.textContent);
  assert.match(shown, /VERIFICATION_CODE_INCORRECT/);
  assert.match(shown, /4 guesses left/);
  await page.$eval(`${row(first)} input[name=code]`, (e) => (e.value = ""));
  await page.type(`${row(first)} input[name=code]`, code);
  await page.click(`${row(first)} [data-action=verify-code]`);
  await page.waitForSelector(`${row(first)}[data-status=verified]`);
  assert.equal(await visible(page, "#error"), false);
  assert.equal(await visible(page, `${row(first)} form.code`), false, "a verified address asks for no code");
  assert.equal(await visible(page, `${row(first)} [data-action=link]`), false);

  // Add → link flow → verified, by clicking the link in the mailbox in another tab.
  const second = `${unique("second")}@example.com`;
  await page.type("#add-email", second);
  await page.click("#add button[type=submit]");
  await page.waitForSelector(row(second));
  since = Date.now() - 1000;
  await page.click(`${row(second)} [data-action=link]`);
  await page.waitForSelector(`${row(second)}[data-status=pending] .flow`, { visible: true });
  await mailTo(api.base, second, since);
  await page.screenshot({ path: join(shots, "account-page-waiting-for-link.png"), fullPage: true });
  const mailboxTab = await browser.newPage();
  await mailboxTab.goto(`${api.base}/_dev/mailbox`);
  const anchor = await mailboxTab.waitForSelector(`article:first-of-type a[href*="code="]`);
  assert.match(await mailboxTab.$eval("article:first-of-type", (e) => e.textContent), new RegExp(second.replace(/[.]/g, "\\.")));
  assert.match(await mailboxTab.$eval("article:first-of-type a[href*='code=']", (a) => a.href), /\/_dev\/account\/verify\.html\?code=/);
  await Promise.all([mailboxTab.waitForNavigation(), anchor.click()]);
  // The example's landing page proves the token with verifyEmailLink.
  await mailboxTab.waitForSelector("body[data-outcome]");
  assert.equal(await mailboxTab.$eval("body", (e) => e.dataset.outcome), "verified");
  assert.match(await mailboxTab.$eval("#result", (e) => e.textContent), /is verified/);
  // Opening it again: the SDK's KnownError for a used link, in words.
  await mailboxTab.reload();
  await mailboxTab.waitForSelector("body[data-outcome]");
  assert.equal(await mailboxTab.$eval("body", (e) => e.dataset.outcome), "used");
  await mailboxTab.close();
  // The account page flips by itself (the link flow's polling), no reload.
  await page.waitForSelector(`${row(second)}[data-status=verified]`, { timeout: 10_000 });
  assert.equal(await visible(page, `${row(second)} .flow`), false, "the waiting note is gone");
  await page.waitForFunction(() => /is verified: the link was used/.test(document.querySelector("#notice").textContent));

  // Make primary: the second, then the first (which demotes the second).
  await page.click(`${row(second)} [data-action=primary]`);
  await page.waitForSelector(`${row(second)}[data-primary=true]`);
  await page.click(`${row(first)} [data-action=primary]`);
  await page.waitForSelector(`${row(first)}[data-primary=true]`);
  await page.waitForSelector(`${row(second)}[data-primary=false]`);

  // An address added twice: the 409 is shown in words.
  await page.type("#add-email", second.toUpperCase());
  await page.click("#add button[type=submit]");
  await page.waitForSelector("#error", { visible: true });
  assert.match(await page.$eval("#error", (e) => e.textContent), /CONTACT_CHANNEL_ALREADY_EXISTS — You have added this address already/);
  await page.screenshot({ path: join(shots, "account-page.png"), fullPage: true });

  // Delete.
  await page.click(`${row(second)} [data-action=delete]`);
  await page.waitForFunction((sel) => !document.querySelector(sel), {}, row(second));
  assert.deepEqual(await page.$$eval("li.address", (rows) => rows.map((r) => r.dataset.email)), [first]);
  await page.screenshot({ path: join(shots, "account-page-after-delete.png"), fullPage: true });

  assert.deepEqual(problems, []);
});

test("in a real browser the server client refuses to be built, and the client works", async () => {
  const page = await browser.newPage();
  await page.goto(`${api.base}/_dev/account?user=${unique("refuse")}`);
  await page.waitForSelector("body[data-ready=true]");
  const outcome = await page.evaluate(async () => {
    const sdk = await import("/_dev/sdk/index.js");
    const token = (await (await fetch("/_dev/token?user=in-page")).json()).token;
    const me = new sdk.ContactChannelsClient({ baseUrl: location.origin, getAccessToken: () => token }).currentUser();
    const listed = (await me.listContactChannels()).length;
    try {
      new sdk.ContactChannelsServer({ baseUrl: location.origin, serverKey: "local-dev-server-key" });
      return { listed, server: "constructed" };
    } catch (e) {
      return { listed, server: e.message };
    }
  });
  assert.equal(outcome.listed, 0);
  assert.match(outcome.server, /must not run in a browser/);
  await page.close();
});
