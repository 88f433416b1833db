// The account page: a signed-in user's email addresses, on the contact-channels SDK only.
// Plain DOM, no framework. `make run` serves it at /_dev/account?user=alice.
import {
  ContactChannelsClient,
  KnownError,
  KnownErrors,
  TransportError,
  isEmailLinkError,
} from "contact-channels";

const user = new URLSearchParams(location.search).get("user") || "alice";
document.getElementById("user").textContent = user;

// Your identity provider gives the access token; here the dev server mints one for `user`.
let cached = null;
async function getAccessToken() {
  if (cached && cached.until > Date.now()) return cached.token;
  const answer = await fetch(`/_dev/token?user=${encodeURIComponent(user)}`);
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || "cannot get a dev token");
  cached = { token: body.token, until: Date.now() + 30 * 60 * 1000 };
  return body.token;
}

const cc = new ContactChannelsClient({
  baseUrl: location.origin,
  getAccessToken,
  linkFlowPolling: { initialMs: 500, maxMs: 2000 },
});
const me = cc.currentUser();

const list = document.getElementById("addresses");
const rowTemplate = document.getElementById("row");
const errorBox = document.getElementById("error");
const noticeBox = document.getElementById("notice");

/** Channels by id, in list order; link flows and sent codes by channel id. */
let channels = [];
const flows = new Map();
const codeSent = new Set();

function showError(error) {
  errorBox.replaceChildren();
  if (error instanceof KnownError) {
    const code = document.createElement("code");
    code.textContent = error.code;
    errorBox.append(code, ` — ${hint(error)}`);
    const remaining = error.details.attempts_remaining;
    if (typeof remaining === "number") errorBox.append(` (${remaining} guesses left)`);
    if (error.retryAfterSeconds !== null) errorBox.append(` Try again in ${error.retryAfterSeconds} s.`);
  } else if (error instanceof TransportError) {
    errorBox.append(`Cannot reach the API: ${error.message}`);
  } else if (isEmailLinkError(error)) {
    errorBox.append(`The link flow stopped (${error.code}): ${error.message}`);
  } else {
    errorBox.append(String(error && error.message ? error.message : error));
  }
  errorBox.hidden = false;
  noticeBox.hidden = true;
}

/** A sentence for the user; the classes of `KnownErrors` tell the cases apart. */
function hint(error) {
  if (error instanceof KnownErrors.ContactChannelAlreadyExists) return "You have added this address already.";
  if (error instanceof KnownErrors.ContactChannelAlreadyUsedForAuthBySomeoneElse)
    return "Another account signs in with this address; add it without \"use it to sign in\".";
  if (error instanceof KnownErrors.SchemaError) return `That does not look right: ${error.message}`;
  if (error instanceof KnownErrors.VerificationCodeIncorrect) return "That code is not the one we sent.";
  if (error instanceof KnownErrors.VerificationCodeMaxAttemptsReached)
    return "Too many wrong codes: send a new one.";
  if (error instanceof KnownErrors.VerificationCodeExpired) return "That code has expired: send a new one.";
  if (error instanceof KnownErrors.RateLimited) return "A mail went to this address moments ago.";
  if (error instanceof KnownErrors.EmailDeliveryFailed) return "The mail could not be delivered to this address.";
  return error.message;
}

function notice(text) {
  noticeBox.textContent = text;
  noticeBox.hidden = false;
  errorBox.hidden = true;
}

/** Runs an action, shows its error; nothing is swallowed. */
async function act(what) {
  try {
    errorBox.hidden = true;
    await what();
  } catch (error) {
    showError(error);
    console.error(error);
  }
}

function badge(text, cls) {
  const span = document.createElement("span");
  span.className = `badge ${cls}`;
  span.textContent = text;
  return span;
}

function render() {
  list.replaceChildren();
  document.getElementById("empty").hidden = channels.length > 0;
  for (const channel of channels) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.dataset.channelId = channel.id;
    row.dataset.email = channel.value;
    row.dataset.status = channel.verification.status;
    row.dataset.primary = String(channel.isPrimary);
    row.querySelector(".email").textContent = channel.value;
    const badges = row.querySelector(".badges");
    const status = channel.verification.status;
    badges.append(badge(status, status));
    if (channel.isPrimary) badges.append(badge("primary", "primary"));
    if (channel.usedForAuth) badges.append(badge("sign-in", "auth"));

    const flow = flows.get(channel.id);
    const q = (action) => row.querySelector(`[data-action="${action}"]`);
    q("send-code").hidden = channel.isVerified;
    q("link").hidden = channel.isVerified || flow !== undefined;
    q("cancel-link").hidden = flow === undefined;
    q("primary").hidden = channel.isPrimary;
    row.querySelector("form.code").hidden = channel.isVerified || !codeSent.has(channel.id);
    if (flow) {
      const p = row.querySelector(".flow");
      p.textContent = `Link sent to ${channel.value}: open it from the mailbox; this page updates by itself.`;
      p.hidden = false;
    }

    q("send-code").addEventListener("click", () =>
      act(async () => {
        const sent = await channel.sendVerificationCode();
        codeSent.add(channel.id);
        notice(`A code was sent to ${channel.value}; it works until ${sent.expireAt.toLocaleTimeString()}.`);
        await reload();
        list.querySelector(`[data-channel-id="${channel.id}"] input[name=code]`)?.focus();
      }),
    );
    row.querySelector("form.code").addEventListener("submit", (event) => {
      event.preventDefault();
      const code = new FormData(event.target).get("code");
      act(async () => {
        const verified = await channel.asEmailAddress().attemptVerification({ code: String(code).trim() });
        codeSent.delete(channel.id);
        notice(`${verified.emailAddress} is verified.`);
        await reload();
      });
    });
    q("link").addEventListener("click", () => startLinkFlow(channel));
    q("cancel-link").addEventListener("click", () => flows.get(channel.id)?.cancelEmailLinkFlow());
    q("primary").addEventListener("click", () =>
      act(async () => {
        await channel.update({ isPrimary: true });
        notice(`${channel.value} is now your primary address.`);
        await reload();
      }),
    );
    q("delete").addEventListener("click", () =>
      act(async () => {
        flows.get(channel.id)?.cancelEmailLinkFlow();
        await channel.asEmailAddress().destroy();
        notice(`${channel.value} was deleted.`);
        await reload();
      }),
    );
    list.append(row);
  }
}

function startLinkFlow(channel) {
  const flow = channel.asEmailAddress().createEmailLinkFlow();
  flows.set(channel.id, flow);
  // The landing page of this example (verify.html, on tokenFromUrl + verifyEmailLink).
  const redirectUrl = new URL("/_dev/account/verify.html", location.origin).href;
  act(async () => {
    const onSent = (sent) => {
      notice(`A link was sent to ${channel.value}; it works until ${sent.expireAt.toLocaleString()}.`);
      act(reload);
    };
    const started = flow.startEmailLinkFlow({ redirectUrl, onSent });
    render();
    try {
      const verified = await started;
      notice(`${verified.emailAddress} is verified: the link was used.`);
    } catch (error) {
      if (isEmailLinkError(error) && error.code === "cancelled") notice("Stopped waiting for the link.");
      else throw error;
    } finally {
      flows.delete(channel.id);
      await reload();
    }
  });
}

async function reload() {
  channels = await me.listContactChannels();
  render();
}

document.getElementById("add").addEventListener("submit", (event) => {
  event.preventDefault();
  const email = document.getElementById("add-email");
  const usedForAuth = document.getElementById("add-auth").checked;
  act(async () => {
    const address = await me.createEmailAddress({ email: email.value, usedForAuth });
    notice(`${address.emailAddress} was added. Verify it with a code or a link.`);
    email.value = "";
    await reload();
  });
});

window.addEventListener("unhandledrejection", (event) => showError(event.reason));

act(reload).then(() => document.body.setAttribute("data-ready", "true"));
