// Unit tests of the SDK with a stubbed fetch: request shapes, mapping of answers to objects,
// error classes, retry-after, the email link flow's polling. The real server is exercised by
// test/integration.
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import {
  ContactChannelsClient,
  ContactChannelsServer,
  ContactChannel,
  ServerContactChannel,
  EmailAddress,
  ErrorCode,
  KnownError,
  KnownErrors,
  NetworkError,
  TransportError,
  UnexpectedResponseError,
  EmailLinkError,
  isEmailLinkError,
  tokenFromUrl,
  verifyEmailLink,
  checkEmailLink,
} from "../../dist/index.js";

const ID = "b3d396b8-c574-4c80-97b3-50031675ceb2";

function wireChannel(overrides = {}) {
  return {
    id: ID,
    user_id: "alice",
    type: "email",
    value: "alice@example.com",
    is_primary: false,
    is_verified: false,
    used_for_auth: true,
    created_at_millis: 1763772000000,
    verification: { status: "unverified", strategy: null, attempts: 0, expires_at_millis: null },
    ...overrides,
  };
}

/** A fetch that records each request and answers with `handler(request)`. */
function stubFetch(handler) {
  const calls = [];
  const fetch = async (url, init) => {
    const u = new URL(url);
    const call = {
      method: init.method,
      url,
      path: u.pathname,
      search: u.search,
      headers: init.headers,
      body: init.body === undefined ? undefined : JSON.parse(init.body),
    };
    calls.push(call);
    const answer = await handler(call, calls.length);
    if (answer instanceof Response) return answer;
    const { status = 200, body, headers = {} } = answer;
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { "content-type": "application/json", ...headers } });
  };
  return { fetch, calls };
}

function client(handler, extra = {}) {
  const stub = stubFetch(handler);
  const cc = new ContactChannelsClient({
    baseUrl: "https://api.example.com/",
    getAccessToken: async () => "tok",
    fetch: stub.fetch,
    ...extra,
  });
  return { me: cc.currentUser(), calls: stub.calls };
}

function server(handler) {
  const stub = stubFetch(handler);
  const s = new ContactChannelsServer({ baseUrl: "https://api.example.com/api/v1", serverKey: "k", fetch: stub.fetch });
  return { s, calls: stub.calls };
}

function errorAnswer(status, code, details, headers = {}) {
  return { status, body: { code, error: `sentence for ${code}`, ...(details && { details }) }, headers: { "x-known-error": code, ...headers } };
}

describe("client requests", () => {
  test("a client sends its bearer token, asked for on every request, to /api/v1 under the base URL", async () => {
    let n = 0;
    const stub = stubFetch(() => ({ body: { items: [], is_paginated: false } }));
    const me = new ContactChannelsClient({
      baseUrl: "https://api.example.com",
      getAccessToken: () => `tok${++n}`,
      fetch: stub.fetch,
    }).currentUser();
    await me.listContactChannels();
    await me.listContactChannels();
    assert.equal(stub.calls[0].url, "https://api.example.com/api/v1/contact-channels?user_id=me");
    assert.equal(stub.calls[0].headers.authorization, "Bearer tok1");
    assert.equal(stub.calls[1].headers.authorization, "Bearer tok2");
    assert.equal(stub.calls[0].headers["x-server-key"], undefined);
  });

  test("a client without a token sends no authorization header", async () => {
    const { me, calls } = client(() => errorAnswer(401, "UNAUTHENTICATED"), { getAccessToken: () => null });
    await assert.rejects(me.listContactChannels(), KnownErrors.Unauthenticated);
    assert.equal(calls[0].headers.authorization, undefined);
  });

  test("create sends the contract's snake_case body and answers a frozen snapshot with Dates", async () => {
    const { me, calls } = client(() => ({
      status: 201,
      body: wireChannel({
        is_primary: true,
        verification: { status: "pending", strategy: "email_code", attempts: 2, expires_at_millis: 1763772600000 },
      }),
    }));
    const channel = await me.createContactChannel({ type: "email", value: "Alice@Example.com", usedForAuth: true, isPrimary: true });
    assert.deepEqual(calls[0].body, { user_id: "me", type: "email", value: "Alice@Example.com", used_for_auth: true, is_primary: true });
    assert.equal(calls[0].method, "POST");
    assert.equal(calls[0].headers["content-type"], "application/json");
    assert.ok(channel instanceof ContactChannel);
    assert.ok(!(channel instanceof ServerContactChannel));
    assert.equal(channel.id, ID);
    assert.equal(channel.userId, "alice");
    assert.equal(channel.isPrimary, true);
    assert.equal(channel.usedForAuth, true);
    assert.deepEqual(channel.createdAt, new Date(1763772000000));
    assert.deepEqual(channel.verification, {
      status: "pending",
      strategy: "email_code",
      attempts: 2,
      expireAt: new Date(1763772600000),
    });
    assert.ok(Object.isFrozen(channel));
    assert.ok(Object.isFrozen(channel.verification));
    assert.throws(() => {
      channel.value = "x";
    }, TypeError);
  });

  test("update answers a new snapshot and leaves the old one as it was", async () => {
    const { me, calls } = client((call) =>
      call.method === "GET" ? { body: wireChannel() } : { body: wireChannel({ is_primary: true }) },
    );
    const before = await me.getContactChannel(ID);
    const after = await before.update({ isPrimary: true, isVerified: true });
    assert.equal(calls[1].method, "PATCH");
    assert.equal(calls[1].path, `/api/v1/contact-channels/me/${ID}`);
    // A client never sends is_verified, whatever it is handed.
    assert.deepEqual(calls[1].body, { is_primary: true });
    assert.equal(before.isPrimary, false);
    assert.equal(after.isPrimary, true);
    assert.notEqual(before, after);
  });

  test("sendVerificationEmail, sendVerificationCode, attemptVerification, delete and refresh hit their routes", async () => {
    const { me, calls } = client((call) => {
      if (call.path.endsWith("/send-verification-code"))
        return { body: { success: true, strategy: call.body.strategy, expires_at_millis: 1763772600000 } };
      if (call.method === "DELETE") return { body: { success: true } };
      return { body: wireChannel({ is_verified: true, verification: { status: "verified", strategy: "email_code", attempts: 0, expires_at_millis: 1 } }) };
    }, { verificationCallbackUrl: "https://app.example.com/verify" });
    const channel = await me.getContactChannel(ID);
    const link = await channel.sendVerificationEmail();
    assert.deepEqual(calls[1].body, { strategy: "email_link", callback_url: "https://app.example.com/verify" });
    assert.deepEqual(link, { strategy: "email_link", expireAt: new Date(1763772600000) });
    await channel.sendVerificationEmail({ callbackUrl: "https://other.example.com/v" });
    assert.equal(calls[2].body.callback_url, "https://other.example.com/v");
    await channel.sendVerificationCode();
    assert.deepEqual(calls[3].body, { strategy: "email_code" });
    const verified = await channel.attemptVerification("123456");
    assert.equal(calls[4].path, `/api/v1/contact-channels/me/${ID}/attempt-verification`);
    assert.deepEqual(calls[4].body, { code: "123456" });
    assert.equal(verified.isVerified, true);
    assert.equal(await channel.delete(), undefined);
    assert.equal(calls[5].method, "DELETE");
    const fresh = await channel.refresh();
    assert.equal(calls[6].method, "GET");
    assert.equal(fresh.verification.status, "verified");
  });

  test("sendVerificationEmail without any callback URL rejects with a TypeError and sends nothing", async () => {
    const { me, calls } = client(() => ({ body: wireChannel() }));
    const channel = await me.getContactChannel(ID);
    await assert.rejects(channel.sendVerificationEmail(), TypeError);
    await assert.rejects(channel.asEmailAddress().prepareVerification({ strategy: "email_link" }), TypeError);
    assert.equal(calls.length, 1);
  });

  test("primaryContactChannel answers the primary one or null", async () => {
    const items = [wireChannel({ id: "1" }), wireChannel({ id: "2", is_primary: true })];
    const { me } = client(() => ({ body: { items, is_paginated: false } }));
    assert.equal((await me.primaryContactChannel()).id, "2");
    items[1].is_primary = false;
    assert.equal(await me.primaryContactChannel(), null);
  });
});

describe("server requests", () => {
  test("a server sends its key, names the user (percent-encoded) and may set is_verified", async () => {
    const { s, calls } = server((call) => ({ status: call.method === "POST" ? 201 : 200, body: wireChannel({ user_id: "a|b" }) }));
    const user = s.user("a|b");
    const channel = await user.createContactChannel({ type: "email", value: "x@example.com", usedForAuth: false, isVerified: true });
    assert.ok(channel instanceof ServerContactChannel);
    assert.equal(calls[0].headers["x-server-key"], "k");
    assert.equal(calls[0].headers.authorization, undefined);
    assert.deepEqual(calls[0].body, { user_id: "a|b", type: "email", value: "x@example.com", used_for_auth: false, is_verified: true });
    const updated = await channel.update({ isVerified: false, value: "y@example.com" });
    assert.ok(updated instanceof ServerContactChannel);
    assert.equal(calls[1].path, `/api/v1/contact-channels/a%7Cb/${ID}`);
    assert.deepEqual(calls[1].body, { value: "y@example.com", is_verified: false });
    await user.listContactChannels().catch(() => {});
    assert.equal(calls[2].search, "?user_id=a%7Cb");
  });

  test("a server client refuses to be built in a browser", () => {
    globalThis.document = {};
    try {
      assert.throws(() => new ContactChannelsServer({ baseUrl: "https://x", serverKey: "k" }), /must not run in a browser/);
    } finally {
      delete globalThis.document;
    }
    assert.ok(new ContactChannelsServer({ baseUrl: "https://x", serverKey: "k" }));
  });

  test("missing options are refused at construction", () => {
    assert.throws(() => new ContactChannelsServer({ baseUrl: "https://x", serverKey: "" }), TypeError);
    assert.throws(() => new ContactChannelsClient({ baseUrl: "https://x" }), TypeError);
    assert.throws(() => new ContactChannelsClient({ baseUrl: "", getAccessToken: () => "t" }), TypeError);
  });
});

describe("errors", () => {
  const statuses = {
    PAYLOAD_TOO_LARGE: 413, NOT_FOUND: 404, METHOD_NOT_ALLOWED: 405, UNAUTHENTICATED: 401,
    INVALID_ACCESS_TOKEN: 401, INVALID_SERVER_KEY: 401, SCHEMA_ERROR: 400,
    CANNOT_GET_OWN_USER_WITHOUT_USER: 400, FORBIDDEN: 403, CONTACT_CHANNEL_NOT_FOUND: 404,
    CONTACT_CHANNEL_ALREADY_EXISTS: 409, CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE: 409,
    TOO_MANY_CONTACT_CHANNELS: 409, EMAIL_ALREADY_VERIFIED: 409, REDIRECT_URL_NOT_WHITELISTED: 400,
    RATE_LIMITED: 429, EMAIL_DELIVERY_FAILED: 502, VERIFICATION_CODE_NOT_FOUND: 404,
    VERIFICATION_CODE_EXPIRED: 400, VERIFICATION_CODE_ALREADY_USED: 409,
    VERIFICATION_CODE_MAX_ATTEMPTS_REACHED: 400, VERIFICATION_CODE_INCORRECT: 400, INTERNAL_ERROR: 500,
  };

  test("every code of the contract has a constant and a KnownErrors class with its status", () => {
    assert.deepEqual(Object.keys(ErrorCode).sort(), Object.keys(statuses).sort());
    const classes = Object.values(KnownErrors);
    assert.equal(classes.length, Object.keys(statuses).length);
    for (const cls of classes) {
      assert.equal(cls.status, statuses[cls.code], cls.name);
    }
  });

  for (const [code, status] of Object.entries(statuses)) {
    test(`a ${status} ${code} answer rejects with its KnownErrors class`, async () => {
      const { me } = client(() => errorAnswer(status, code, { attempts_remaining: 3 }));
      const error = await me.getContactChannel(ID).then(
        () => assert.fail("resolved"),
        (e) => e,
      );
      const cls = Object.values(KnownErrors).find((c) => c.code === code);
      assert.ok(error instanceof cls, `${error.name} is not ${cls.name}`);
      assert.ok(error instanceof KnownError);
      assert.ok(KnownError.is(error, code));
      assert.equal(error.code, code);
      assert.equal(error.status, status);
      assert.equal(error.message, `sentence for ${code}`);
      assert.equal(error.details.attempts_remaining, 3);
      assert.equal(error.retryAfterSeconds, null);
    });
  }

  test("a code this SDK does not know yet is still a KnownError, with the code as sent", async () => {
    const { me } = client(() => errorAnswer(418, "SOMETHING_NEW"));
    const error = await me.listContactChannels().catch((e) => e);
    assert.equal(error.constructor, KnownError);
    assert.equal(error.code, "SOMETHING_NEW");
  });

  test("retry-after is read from the header in seconds or as a date, else from details", async () => {
    const answers = [
      errorAnswer(429, "RATE_LIMITED", { retry_after_seconds: 99 }, { "retry-after": "17" }),
      errorAnswer(429, "RATE_LIMITED", undefined, { "retry-after": new Date(Date.now() + 5500).toUTCString() }),
      errorAnswer(429, "RATE_LIMITED", { retry_after_seconds: 12 }),
    ];
    const { me } = client((_, n) => answers[n - 1]);
    const errors = [];
    for (let i = 0; i < 3; i++) errors.push(await me.listContactChannels().catch((e) => e));
    assert.ok(errors.every((e) => e instanceof KnownErrors.RateLimited));
    assert.equal(errors[0].retryAfterSeconds, 17);
    assert.ok(errors[1].retryAfterSeconds >= 4 && errors[1].retryAfterSeconds <= 6, String(errors[1].retryAfterSeconds));
    assert.equal(errors[2].retryAfterSeconds, 12);
  });

  test("a non-JSON gateway page is an UnexpectedResponseError, not a KnownError", async () => {
    const { me } = client(() => new Response("<html>502 Bad Gateway</html>", { status: 502, headers: { "content-type": "text/html" } }));
    const error = await me.listContactChannels().catch((e) => e);
    assert.ok(error instanceof UnexpectedResponseError);
    assert.ok(error instanceof TransportError);
    assert.ok(!(error instanceof KnownError));
    assert.equal(error.status, 502);
    assert.match(error.body, /Bad Gateway/);
  });

  test("a JSON error without the API's code (API Gateway's) is an UnexpectedResponseError", async () => {
    const { me } = client(() => ({ status: 503, body: { message: "Service Unavailable" }, headers: { "retry-after": "2" } }));
    const error = await me.listContactChannels().catch((e) => e);
    assert.ok(error instanceof UnexpectedResponseError);
    assert.equal(error.retryAfterSeconds, 2);
  });

  test("a 2xx answer that is not a JSON object is an UnexpectedResponseError", async () => {
    const { me } = client(() => new Response("ok", { status: 200 }));
    await assert.rejects(me.listContactChannels(), UnexpectedResponseError);
  });

  test("a failed fetch is a NetworkError carrying the cause", async () => {
    const cause = new TypeError("fetch failed");
    const { me } = client(() => {
      throw cause;
    });
    const error = await me.listContactChannels().catch((e) => e);
    assert.ok(error instanceof NetworkError);
    assert.ok(error instanceof TransportError);
    assert.equal(error.cause, cause);
  });

  test("an access-token callback that throws rejects the call with that error", async () => {
    const boom = new Error("not signed in");
    const { me } = client(() => assert.fail("no request expected"), {
      getAccessToken: async () => {
        throw boom;
      },
    });
    await assert.rejects(me.listContactChannels(), (e) => e === boom);
  });
});

describe("Clerk-style EmailAddress", () => {
  test("createEmailAddress and the EmailAddress members map onto the channel", async () => {
    const { me, calls } = client((call) => {
      if (call.path.endsWith("/send-verification-code"))
        return { body: { success: true, strategy: call.body.strategy, expires_at_millis: 1763772600000 } };
      if (call.path.endsWith("/attempt-verification"))
        return { body: wireChannel({ is_verified: true, verification: { status: "verified", strategy: "email_code", attempts: 0, expires_at_millis: 1763772600000 } }) };
      if (call.method === "DELETE") return { body: { success: true } };
      if (call.method === "POST") return { status: 201, body: wireChannel() };
      return { body: wireChannel({ verification: { status: "pending", strategy: "email_code", attempts: 0, expires_at_millis: 1763772600000 } }) };
    });
    const address = await me.createEmailAddress({ email: "alice@example.com" });
    assert.deepEqual(calls[0].body, { user_id: "me", type: "email", value: "alice@example.com", used_for_auth: false });
    assert.ok(address instanceof EmailAddress);
    assert.equal(address.emailAddress, "alice@example.com");
    assert.equal(`${address}`, "alice@example.com");
    assert.ok(Object.isFrozen(address));
    const prepared = await address.prepareVerification({ strategy: "email_code" });
    assert.deepEqual(calls[1].body, { strategy: "email_code" });
    assert.equal(prepared.verification.status, "pending");
    await address.prepareVerification({ strategy: "email_link", redirectUrl: "https://app.example.com/v" });
    assert.deepEqual(calls[3].body, { strategy: "email_link", callback_url: "https://app.example.com/v" });
    const verified = await prepared.attemptVerification({ code: "123456" });
    assert.equal(verified.verification.status, "verified");
    await verified.destroy();
    assert.equal(calls.at(-1).method, "DELETE");
    assert.ok(verified.contactChannel instanceof ContactChannel);
  });

  const fast = { linkFlowPolling: { initialMs: 10, maxMs: 40 } };

  /** A fake API for the link flow: `states` are answered to the reads in turn. */
  function linkApi(states, expiresAt = Date.now() + 60_000) {
    let reads = 0;
    return client((call) => {
      if (call.path.endsWith("/send-verification-code"))
        return { body: { success: true, strategy: "email_link", expires_at_millis: expiresAt } };
      const state = states[Math.min(reads++, states.length - 1)];
      if (typeof state === "function") return state();
      return { body: wireChannel(state) };
    }, fast);
  }
  const pending = (expiresAt) => ({ verification: { status: "pending", strategy: "email_link", attempts: 0, expires_at_millis: expiresAt } });

  test("the link flow sends a link, polls, and resolves with the verified address", async () => {
    const expiresAt = Date.now() + 60_000;
    const verified = { is_verified: true, verification: { status: "verified", strategy: "email_link", attempts: 0, expires_at_millis: expiresAt } };
    const { me, calls } = linkApi([{}, pending(expiresAt), pending(expiresAt), pending(expiresAt), verified], expiresAt);
    const address = (await me.getContactChannel(ID)).asEmailAddress();
    const sentSeen = [];
    const result = await address.createEmailLinkFlow().startEmailLinkFlow({
      redirectUrl: "https://app.example.com/v",
      onSent: (sent) => sentSeen.push([sent, calls.length]),
    });
    assert.equal(result.verification.status, "verified");
    assert.deepEqual(sentSeen, [[{ strategy: "email_link", expireAt: new Date(expiresAt) }, 2]], "onSent once, right after the send");
    assert.deepEqual(calls[1].body, { strategy: "email_link", callback_url: "https://app.example.com/v" });
    assert.equal(calls.filter((c) => c.method === "GET").length, 5);
  });

  test("the link flow rejects with EmailLinkError expired when the link runs out", async () => {
    const expiresAt = Date.now() + 150;
    const { me } = linkApi([{}, pending(expiresAt), pending(expiresAt), { verification: { status: "expired", strategy: "email_link", attempts: 0, expires_at_millis: expiresAt } }], expiresAt);
    const address = (await me.getContactChannel(ID)).asEmailAddress();
    const error = await address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: "https://a.example/v" }).catch((e) => e);
    assert.ok(isEmailLinkError(error), String(error));
    assert.equal(error.code, "expired");
  });

  test("the link flow rejects with EmailLinkError failed when a newer code replaces the link", async () => {
    const expiresAt = Date.now() + 60_000;
    const { me } = linkApi([{}, { verification: { status: "pending", strategy: "email_code", attempts: 0, expires_at_millis: expiresAt + 5 } }], expiresAt);
    const address = (await me.getContactChannel(ID)).asEmailAddress();
    const error = await address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: "https://a.example/v" }).catch((e) => e);
    assert.ok(error instanceof EmailLinkError);
    assert.equal(error.code, "failed");
  });

  test("cancelEmailLinkFlow stops polling and rejects the pending start with cancelled", async () => {
    const expiresAt = Date.now() + 60_000;
    const { me, calls } = linkApi([{}, pending(expiresAt)], expiresAt);
    const address = (await me.getContactChannel(ID)).asEmailAddress();
    const flow = address.createEmailLinkFlow();
    const started = flow.startEmailLinkFlow({ redirectUrl: "https://a.example/v" });
    await new Promise((r) => setTimeout(r, 60));
    flow.cancelEmailLinkFlow();
    const error = await started.catch((e) => e);
    assert.equal(error.code, "cancelled");
    const reads = calls.length;
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(calls.length, reads, "no request after cancel");
  });

  test("the link flow waits as long as retry-after says on a 429 while polling, then goes on", async () => {
    const expiresAt = Date.now() + 60_000;
    const verified = { is_verified: true, verification: { status: "verified", strategy: "email_link", attempts: 0, expires_at_millis: expiresAt } };
    const times = [];
    const { me } = linkApi([{}, () => { times.push(Date.now()); return errorAnswer(429, "RATE_LIMITED", undefined, { "retry-after": "1" }); }, () => { times.push(Date.now()); return { body: wireChannel(verified) }; }], expiresAt);
    const address = (await me.getContactChannel(ID)).asEmailAddress();
    const result = await address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: "https://a.example/v" });
    assert.equal(result.verification.status, "verified");
    assert.ok(times[1] - times[0] >= 950, `waited ${times[1] - times[0]} ms`);
  });

  test("the link flow rejects with the KnownError when the send is refused, and when the address is deleted", async () => {
    const { me } = client((call) =>
      call.path.endsWith("/send-verification-code")
        ? errorAnswer(429, "RATE_LIMITED", undefined, { "retry-after": "30" })
        : { body: wireChannel() }, fast);
    const address = (await me.getContactChannel(ID)).asEmailAddress();
    const error = await address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: "https://a.example/v" }).catch((e) => e);
    assert.ok(error instanceof KnownErrors.RateLimited);
    assert.equal(error.retryAfterSeconds, 30);

    const expiresAt = Date.now() + 60_000;
    const gone = linkApi([{}, pending(expiresAt), () => errorAnswer(404, "CONTACT_CHANNEL_NOT_FOUND")], expiresAt);
    const a2 = (await gone.me.getContactChannel(ID)).asEmailAddress();
    await assert.rejects(a2.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: "https://a.example/v" }), KnownErrors.ContactChannelNotFound);
  });

  test("the link flow tolerates a few network failures while polling, then gives up with the NetworkError", async () => {
    const expiresAt = Date.now() + 60_000;
    const fail = () => { throw new TypeError("fetch failed"); };
    const { me } = linkApi([{}, fail, fail, fail, fail, fail], expiresAt);
    const address = (await me.getContactChannel(ID)).asEmailAddress();
    await assert.rejects(address.createEmailLinkFlow().startEmailLinkFlow({ redirectUrl: "https://a.example/v" }), NetworkError);
  });
});

describe("link landing helpers", () => {
  test("tokenFromUrl reads the code parameter", () => {
    assert.equal(tokenFromUrl("https://app.example.com/verify?x=1&code=abc_DEF-123"), "abc_DEF-123");
    assert.equal(tokenFromUrl(new URL("https://app.example.com/verify?code=t%2Bx")), "t+x");
    assert.equal(tokenFromUrl("https://app.example.com/verify"), null);
    assert.equal(tokenFromUrl("/verify?code="), null);
  });

  test("verifyEmailLink and checkEmailLink post the token without credentials", async () => {
    const stub = stubFetch((call) => ({ body: call.path.endsWith("/check-code") ? { is_code_valid: true } : { success: true } }));
    assert.equal(await checkEmailLink({ baseUrl: "https://api.example.com", token: "tok", fetch: stub.fetch }), true);
    assert.equal(await verifyEmailLink({ baseUrl: "https://api.example.com", token: "tok", fetch: stub.fetch }), undefined);
    assert.equal(stub.calls[0].path, "/api/v1/contact-channels/verify/check-code");
    assert.equal(stub.calls[1].path, "/api/v1/contact-channels/verify");
    assert.deepEqual(stub.calls[1].body, { code: "tok" });
    assert.equal(stub.calls[1].headers.authorization, undefined);
    assert.equal(stub.calls[1].headers["x-server-key"], undefined);
  });

  test("verifyEmailLink rejects with the KnownError of the answer", async () => {
    const stub = stubFetch(() => errorAnswer(400, "VERIFICATION_CODE_EXPIRED"));
    await assert.rejects(verifyEmailLink({ baseUrl: "https://api.example.com", token: "t", fetch: stub.fetch }), KnownErrors.VerificationCodeExpired);
    await assert.rejects(verifyEmailLink({ baseUrl: "https://api.example.com", token: "" }), TypeError);
  });
});
