// Every SDK method against the real local server (spawned, embedded store, local mailbox):
// both object models, both strategies, the link flow with the link followed from the mailbox,
// each error class the API can be made to answer through the SDK, and retry-after.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";

import {
  ContactChannelsClient,
  ContactChannelsServer,
  ContactChannel,
  ServerContactChannel,
  EmailAddress,
  KnownError,
  KnownErrors,
  NetworkError,
  UnexpectedResponseError,
  EmailLinkError,
  tokenFromUrl,
  verifyEmailLink,
  checkEmailLink,
} from "../../dist/index.js";
import { startServer, mailTo, codeIn, linkIn, unique, SERVER_KEY } from "../support/local-server.mjs";

/** The main server: a 30 s send cooldown (for retry-after) and 4 channels per user. */
let api;
/** A server whose codes and links live 2 s, for expiry. */
let shortLived;

before(async () => {
  [api, shortLived] = await Promise.all([
    startServer({ SEND_COOLDOWN_SECONDS: "30", MAX_CHANNELS_PER_USER: "4" }),
    startServer({ SEND_COOLDOWN_SECONDS: "0", CODE_TTL_SECONDS: "2", LINK_TTL_SECONDS: "2" }),
  ]);
});
after(async () => {
  await Promise.all([api?.stop(), shortLived?.stop()]);
});

/** The signed-in user `user` (a fresh one by default) as a client of `server`. */
function clientFor(server = api, user = unique("user")) {
  const token = server.token(user);
  let asked = 0;
  const cc = new ContactChannelsClient({
    baseUrl: server.base,
    getAccessToken: async () => {
      asked += 1;
      return token;
    },
    linkFlowPolling: { initialMs: 100, maxMs: 400 },
  });
  return { me: cc.currentUser(), user, asked: () => asked };
}

function serverFor(server = api) {
  return new ContactChannelsServer({ baseUrl: server.base, serverKey: SERVER_KEY, linkFlowPolling: { initialMs: 100, maxMs: 400 } });
}

const email = (prefix = "a") => `${unique(prefix)}@example.com`;
const devVerify = () => `${api.base}/_dev/verify`;

/** Resolves with the rejection of `promise`; fails when it resolves. */
async function rejection(promise) {
  try {
    const value = await promise;
    assert.fail(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return error;
  }
}

describe("client, Stack's ContactChannel", () => {
  test("create, list, get, primary, update, refresh and delete round-trip through the API", async () => {
    const { me, user, asked } = clientFor();
    assert.deepEqual(await me.listContactChannels(), []);
    assert.equal(await me.primaryContactChannel(), null);
    const address = email("Crud");
    const created = await me.createContactChannel({ type: "email", value: `  ${address.toUpperCase()} `, usedForAuth: true, isPrimary: false });
    assert.ok(created instanceof ContactChannel);
    assert.equal(created.value, address.toLowerCase(), "the server normalizes the value");
    assert.equal(created.userId, user);
    assert.equal(created.type, "email");
    assert.equal(created.usedForAuth, true);
    assert.equal(created.isPrimary, false);
    assert.equal(created.isVerified, false);
    assert.ok(created.createdAt instanceof Date && Math.abs(created.createdAt.getTime() - Date.now()) < 60_000);
    assert.deepEqual(created.verification, { status: "unverified", strategy: null, attempts: 0, expireAt: null });

    const second = await me.createContactChannel({ type: "email", value: email("second"), usedForAuth: false, isPrimary: true });
    const list = await me.listContactChannels();
    assert.deepEqual(list.map((c) => c.id), [created.id, second.id], "oldest first");
    assert.equal((await me.primaryContactChannel()).id, second.id);
    assert.equal((await me.getContactChannel(created.id)).value, created.value);

    const primary = await created.update({ isPrimary: true });
    assert.equal(primary.isPrimary, true);
    assert.equal(created.isPrimary, false, "the old snapshot is unchanged");
    assert.equal((await second.refresh()).isPrimary, false, "making one primary demotes the other");
    const moved = await primary.update({ value: email("moved"), usedForAuth: false });
    assert.equal(moved.usedForAuth, false);
    assert.notEqual(moved.value, created.value);

    await second.delete();
    const gone = await rejection(second.refresh());
    assert.ok(gone instanceof KnownErrors.ContactChannelNotFound);
    assert.deepEqual((await me.listContactChannels()).map((c) => c.id), [created.id]);
    assert.ok(asked() >= 10, "the access token is asked for on every request");
  });

  test("a 6-digit code from the mailbox verifies the channel; another send is refused as already verified", async () => {
    const { me } = clientFor();
    const channel = await me.createContactChannel({ type: "email", value: email("code"), usedForAuth: false });
    const since = Date.now() - 1000;
    const sent = await channel.sendVerificationCode();
    assert.equal(sent.strategy, "email_code");
    assert.ok(sent.expireAt.getTime() > Date.now());
    const pending = await channel.refresh();
    assert.equal(pending.verification.status, "pending");
    assert.equal(pending.verification.strategy, "email_code");
    assert.equal(pending.verification.expireAt.getTime(), sent.expireAt.getTime());

    const code = codeIn(await mailTo(api.base, channel.value, since));
    const verified = await pending.attemptVerification(code);
    assert.equal(verified.isVerified, true);
    assert.equal(verified.verification.status, "verified");

    const again = await rejection(verified.sendVerificationCode());
    assert.ok(again instanceof KnownErrors.EmailAlreadyVerified);
    assert.equal(again.status, 409);
    const attempt = await rejection(verified.attemptVerification(code));
    assert.ok(attempt instanceof KnownErrors.EmailAlreadyVerified);
  });

  test("a link from the mailbox is checked and verified by the landing helpers, then reported as used", async () => {
    const { me } = clientFor();
    const channel = await me.createContactChannel({ type: "email", value: email("link"), usedForAuth: false });
    const since = Date.now() - 1000;
    const sent = await channel.sendVerificationEmail({ callbackUrl: "http://localhost:5173/verify?from=mail" });
    assert.equal(sent.strategy, "email_link");
    const link = linkIn(await mailTo(api.base, channel.value, since));
    assert.ok(link.startsWith("http://localhost:5173/verify?from=mail&code="), link);
    const token = tokenFromUrl(link);
    assert.ok(token && token.length >= 43);

    assert.equal(await checkEmailLink({ baseUrl: api.base, token }), true);
    assert.equal((await channel.refresh()).isVerified, false, "checking does not use the link");
    await verifyEmailLink({ baseUrl: api.base, token });
    assert.equal((await channel.refresh()).isVerified, true);
    const used = await rejection(verifyEmailLink({ baseUrl: api.base, token }));
    assert.ok(used instanceof KnownErrors.VerificationCodeAlreadyUsed);
    const unknown = await rejection(checkEmailLink({ baseUrl: api.base, token: "x".repeat(43) }));
    assert.ok(unknown instanceof KnownErrors.VerificationCodeNotFound);
  });
});

describe("client, Clerk's EmailAddress", () => {
  test("createEmailAddress, listEmailAddresses, prepareVerification(email_code), attemptVerification and destroy", async () => {
    const { me } = clientFor();
    const address = await me.createEmailAddress({ email: email("clerk") });
    assert.ok(address instanceof EmailAddress);
    assert.equal(`${address}`, address.emailAddress);
    assert.equal(address.contactChannel.usedForAuth, false);
    assert.deepEqual((await me.listEmailAddresses()).map((a) => a.id), [address.id]);

    const since = Date.now() - 1000;
    const prepared = await address.prepareVerification({ strategy: "email_code" });
    assert.equal(prepared.verification.status, "pending");
    assert.equal(prepared.verification.strategy, "email_code");
    const code = codeIn(await mailTo(api.base, address.emailAddress, since));
    const wrong = code === "000000" ? "111111" : "000000";
    const incorrect = await rejection(prepared.attemptVerification({ code: wrong }));
    assert.ok(incorrect instanceof KnownErrors.VerificationCodeIncorrect);
    assert.equal(incorrect.details.attempts_remaining, 4);
    assert.equal((await prepared.reload()).verification.attempts, 1);
    const verified = await prepared.attemptVerification({ code });
    assert.equal(verified.verification.status, "verified");

    await verified.destroy();
    assert.deepEqual(await me.listEmailAddresses(), []);
  });

  test("the email link flow resolves with the verified address once the mailed link is followed", async () => {
    const { me } = clientFor();
    const address = await me.createEmailAddress({ email: email("flow") });
    const since = Date.now() - 1000;
    const flow = address.createEmailLinkFlow();
    const started = flow.startEmailLinkFlow({ redirectUrl: devVerify() });
    const link = linkIn(await mailTo(api.base, address.emailAddress, since));
    // Wait a couple of polls, so the flow is seen to wait for the click.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await address.reload()).verification.status, "pending");
    const page = await fetch(link); // what clicking it in /_dev/mailbox does
    assert.equal(page.status, 200);
    assert.match(await page.text(), /verified/);
    const verified = await started;
    assert.ok(verified instanceof EmailAddress);
    assert.equal(verified.id, address.id);
    assert.equal(verified.verification.status, "verified");
    assert.equal(verified.verification.strategy, "email_link");
  });

  test("the email link flow rejects with EmailLinkError expired when the link runs out", async () => {
    const { me } = clientFor(shortLived);
    const address = await me.createEmailAddress({ email: email("expires") });
    const startedAt = Date.now();
    const error = await rejection(
      address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: `${shortLived.base}/_dev/verify` }),
    );
    assert.ok(error instanceof EmailLinkError, String(error));
    assert.equal(error.code, "expired");
    const took = Date.now() - startedAt;
    assert.ok(took >= 1900 && took < 6000, `rejected after ${took} ms`);
  });

  test("cancelEmailLinkFlow stops the flow: it rejects with cancelled and the link still works afterwards", async () => {
    const { me } = clientFor();
    const address = await me.createEmailAddress({ email: email("cancel") });
    const since = Date.now() - 1000;
    const flow = address.createEmailLinkFlow();
    const started = flow.startEmailLinkFlow({ redirectUrl: devVerify() });
    const link = linkIn(await mailTo(api.base, address.emailAddress, since));
    flow.cancelEmailLinkFlow();
    const error = await rejection(started);
    assert.ok(error instanceof EmailLinkError);
    assert.equal(error.code, "cancelled");
    await verifyEmailLink({ baseUrl: api.base, token: tokenFromUrl(link) });
    assert.equal((await address.reload()).verification.status, "verified");
  });

  test("a newer code replaces the link: the flow rejects with EmailLinkError failed", async () => {
    const { me } = clientFor(shortLived);
    const address = await me.createEmailAddress({ email: email("replaced") });
    const since = Date.now() - 1000;
    const started = address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: `${shortLived.base}/_dev/verify` });
    await mailTo(shortLived.base, address.emailAddress, since);
    await address.prepareVerification({ strategy: "email_code" });
    const error = await rejection(started);
    assert.ok(error instanceof EmailLinkError, String(error));
    assert.equal(error.code, "failed");
  });
});

describe("server, Stack's ServerContactChannel", () => {
  test("a server acts on any user, creates verified channels and un-verifies them", async () => {
    const server = serverFor();
    const userId = `${unique("srv")}|tenant`; // `|` travels percent-encoded
    const user = server.user(userId);
    const channel = await user.createContactChannel({ type: "email", value: email("srv"), usedForAuth: true, isPrimary: true, isVerified: true });
    assert.ok(channel instanceof ServerContactChannel);
    assert.equal(channel.userId, userId);
    assert.equal(channel.isVerified, true);
    assert.equal(channel.verification.status, "verified");
    const unverified = await channel.update({ isVerified: false });
    assert.ok(unverified instanceof ServerContactChannel);
    assert.equal(unverified.isVerified, false);
    assert.equal(unverified.verification.status, "unverified");
    assert.equal((await user.primaryContactChannel()).id, channel.id);
    assert.ok((await user.getContactChannel(channel.id)) instanceof ServerContactChannel);
    assert.deepEqual((await user.listContactChannels()).map((c) => c.id), [channel.id]);

    // The same channel through the user's own client.
    const { me } = { me: new ContactChannelsClient({ baseUrl: api.base, getAccessToken: () => api.token(userId) }).currentUser() };
    assert.deepEqual((await me.listContactChannels()).map((c) => c.id), [channel.id]);

    const since = Date.now() - 1000;
    await unverified.sendVerificationCode();
    const code = codeIn(await mailTo(api.base, channel.value, since));
    const verified = await unverified.attemptVerification(code);
    assert.ok(verified instanceof ServerContactChannel);
    assert.equal(verified.isVerified, true);

    const other = await user.createEmailAddress({ email: email("srv-clerk") });
    assert.equal((await user.listEmailAddresses()).length, 2);
    await other.destroy();
    await verified.delete();
    assert.deepEqual(await user.listContactChannels(), []);
  });

  test("a server's email link flow resolves once the link is followed", async () => {
    const user = serverFor().user(unique("srv-flow"));
    const address = await user.createEmailAddress({ email: email("srv-flow") });
    const since = Date.now() - 1000;
    const started = address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: devVerify() });
    const link = linkIn(await mailTo(api.base, address.emailAddress, since));
    assert.equal((await fetch(link)).status, 200);
    assert.equal((await started).verification.status, "verified");
  });
});

describe("errors from the real server", () => {
  const expect = async (promise, cls, status) => {
    const error = await rejection(promise);
    assert.ok(error instanceof cls, `${error?.name}: ${error?.message} is not ${cls.name}`);
    assert.ok(error instanceof KnownError);
    assert.equal(error.code, cls.code);
    assert.equal(error.status, status);
    assert.ok(error.message.length > 0);
    return error;
  };

  test("401s: no token, a bad token, a wrong server key", async () => {
    const none = new ContactChannelsClient({ baseUrl: api.base, getAccessToken: () => null }).currentUser();
    await expect(none.listContactChannels(), KnownErrors.Unauthenticated, 401);
    const bad = new ContactChannelsClient({ baseUrl: api.base, getAccessToken: () => "not.a.jwt" }).currentUser();
    await expect(bad.listContactChannels(), KnownErrors.InvalidAccessToken, 401);
    const wrongKey = new ContactChannelsServer({ baseUrl: api.base, serverKey: "wrong" }).user("alice");
    await expect(wrongKey.listContactChannels(), KnownErrors.InvalidServerKey, 401);
  });

  test("400s and 404s: schema, me for a server, unknown channel, unknown route, too large", async () => {
    const { me } = clientFor();
    const schema = await expect(me.createContactChannel({ type: "email", value: "not-an-email", usedForAuth: false }), KnownErrors.SchemaError, 400);
    assert.match(schema.message, /value/);
    await expect(serverFor().user("me").listContactChannels(), KnownErrors.CannotGetOwnUserWithoutUser, 400);
    await expect(me.getContactChannel("8b3c4a4e-1d1e-4c4f-9a35-1f2b3c4d5e6f"), KnownErrors.ContactChannelNotFound, 404);
    const wrongBase = new ContactChannelsClient({ baseUrl: `${api.base}/nope`, getAccessToken: () => "t" }).currentUser();
    await expect(wrongBase.listContactChannels(), KnownErrors.NotFound, 404);
    await expect(me.createContactChannel({ type: "email", value: `${"a".repeat(17 * 1024)}@example.com`, usedForAuth: false }), KnownErrors.PayloadTooLarge, 413);
  });

  test("409s: already exists (naming the existing channel), used for auth by someone else, too many", async () => {
    const { me } = clientFor();
    const value = email("dup");
    const first = await me.createContactChannel({ type: "email", value, usedForAuth: true });
    const dup = await expect(me.createContactChannel({ type: "email", value, usedForAuth: true }), KnownErrors.ContactChannelAlreadyExists, 409);
    assert.equal(dup.details.contact_channel_id, first.id);
    const someoneElse = clientFor().me;
    const taken = await expect(someoneElse.createContactChannel({ type: "email", value, usedForAuth: true }), KnownErrors.ContactChannelAlreadyUsedForAuthBySomeoneElse, 409);
    assert.equal(taken.details.type, "email");
    for (let i = 0; i < 3; i++) await me.createContactChannel({ type: "email", value: email("many"), usedForAuth: false });
    await expect(me.createContactChannel({ type: "email", value: email("many"), usedForAuth: false }), KnownErrors.TooManyContactChannels, 409);
  });

  test("a send: a callback URL not allowed, retry-after on the cooldown, a mail service that refuses", async () => {
    const { me } = clientFor();
    const channel = await me.createContactChannel({ type: "email", value: email("send"), usedForAuth: false });
    await expect(channel.sendVerificationEmail({ callbackUrl: "https://evil.example.net/verify" }), KnownErrors.RedirectUrlNotWhitelisted, 400);
    await channel.sendVerificationCode();
    const limited = await expect(channel.sendVerificationCode(), KnownErrors.RateLimited, 429);
    assert.ok(Number.isInteger(limited.retryAfterSeconds), String(limited.retryAfterSeconds));
    assert.ok(limited.retryAfterSeconds >= 1 && limited.retryAfterSeconds <= 30, String(limited.retryAfterSeconds));
    // The link flow rejects with the same error rather than waiting half a minute unasked.
    const flow = await rejection(channel.asEmailAddress().createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: devVerify() }));
    assert.ok(flow instanceof KnownErrors.RateLimited);

    const undeliverable = await me.createContactChannel({ type: "email", value: `${unique("nobody")}@mail.invalid`, usedForAuth: false });
    await expect(undeliverable.sendVerificationCode(), KnownErrors.EmailDeliveryFailed, 502);
    assert.equal((await undeliverable.refresh()).verification.status, "unverified", "a refused send changes nothing");
  });

  test("codes: none outstanding, five wrong guesses burn it, expired", async () => {
    const { me } = clientFor(shortLived);
    const channel = await me.createContactChannel({ type: "email", value: email("guess"), usedForAuth: false });
    await expect(channel.attemptVerification("123456"), KnownErrors.VerificationCodeNotFound, 404);
    const since = Date.now() - 1000;
    await channel.sendVerificationCode();
    const code = codeIn(await mailTo(shortLived.base, channel.value, since));
    const wrong = code === "000000" ? "111111" : "000000";
    for (const remaining of [4, 3, 2, 1]) {
      const e = await expect(channel.attemptVerification(wrong), KnownErrors.VerificationCodeIncorrect, 400);
      assert.equal(e.details.attempts_remaining, remaining);
    }
    await expect(channel.attemptVerification(wrong), KnownErrors.VerificationCodeMaxAttemptsReached, 400);
    await expect(channel.attemptVerification(code), KnownErrors.VerificationCodeMaxAttemptsReached, 400);
    assert.equal((await channel.refresh()).verification.status, "failed");

    const other = await me.createContactChannel({ type: "email", value: email("late"), usedForAuth: false });
    const since2 = Date.now() - 1000;
    await other.sendVerificationCode();
    const late = codeIn(await mailTo(shortLived.base, other.value, since2));
    await new Promise((r) => setTimeout(r, 2200));
    await expect(other.attemptVerification(late), KnownErrors.VerificationCodeExpired, 400);
    assert.equal((await other.refresh()).verification.status, "expired");
  });

  test("an expired link is refused by verifyEmailLink", async () => {
    const { me } = clientFor(shortLived);
    const channel = await me.createContactChannel({ type: "email", value: email("oldlink"), usedForAuth: false });
    const since = Date.now() - 1000;
    await channel.sendVerificationEmail({ callbackUrl: `${shortLived.base}/_dev/verify` });
    const token = tokenFromUrl(linkIn(await mailTo(shortLived.base, channel.value, since)));
    await new Promise((r) => setTimeout(r, 2200));
    await expect(verifyEmailLink({ baseUrl: shortLived.base, token }), KnownErrors.VerificationCodeExpired, 400);
  });

  test("no server at the address is a NetworkError; a gateway's HTML page is an UnexpectedResponseError", async () => {
    const port = await new Promise((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address();
        probe.close(() => resolve(port));
      });
    });
    const nowhere = new ContactChannelsClient({ baseUrl: `http://127.0.0.1:${port}`, getAccessToken: () => "t" }).currentUser();
    const network = await rejection(nowhere.listContactChannels());
    assert.ok(network instanceof NetworkError, String(network));
    assert.ok(!(network instanceof KnownError));

    const gateway = http.createServer((_, res) => {
      res.writeHead(502, { "content-type": "text/html", "retry-after": "3" });
      res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
    });
    await new Promise((r) => gateway.listen(0, "127.0.0.1", r));
    try {
      const behind = new ContactChannelsClient({ baseUrl: `http://127.0.0.1:${gateway.address().port}`, getAccessToken: () => "t" }).currentUser();
      const unexpected = await rejection(behind.listContactChannels());
      assert.ok(unexpected instanceof UnexpectedResponseError, String(unexpected));
      assert.equal(unexpected.status, 502);
      assert.equal(unexpected.retryAfterSeconds, 3);
    } finally {
      gateway.close();
    }
  });
});
