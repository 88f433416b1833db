/**
 * Clerk's object model over the same channels: `EmailAddress` with `prepareVerification`,
 * `attemptVerification`, `destroy` and `createEmailLinkFlow` (mail a link, then poll until it
 * is used, it expires, or the flow is cancelled).
 */

import type { ContactChannel, ContactChannelVerification, VerificationSent } from "./channel.js";
import { scopeOf } from "./channel.js";
import { EmailLinkError, KnownError, TransportError, UnexpectedResponseError } from "./errors.js";

/** How the link flow polls: exponential backoff from `initialMs` up to `maxMs`. */
export interface LinkFlowPolling {
  /** First wait after the mail is sent (default 1000 ms). */
  initialMs: number;
  /** Longest wait between two reads (default 8000 ms). */
  maxMs: number;
  /** Growth of the wait per read (default 1.5). */
  factor: number;
  /** Consecutive network failures tolerated before the flow rejects (default 5). */
  maxNetworkFailures: number;
}

/** The defaults of {@link LinkFlowPolling}. */
export const DEFAULT_POLLING: LinkFlowPolling = Object.freeze({
  initialMs: 1000,
  maxMs: 8000,
  factor: 1.5,
  maxNetworkFailures: 5,
});

/** Options of `prepareVerification` (Clerk's names). */
export type PrepareVerificationOptions =
  | { strategy: "email_code"; redirectUrl?: string }
  | { strategy: "email_link"; redirectUrl?: string };

/** Options of `startEmailLinkFlow`. */
export interface StartEmailLinkFlowOptions {
  /** The page the link opens, with `?code=<token>` added; it calls `verifyEmailLink`. */
  redirectUrl: string;
  /**
   * Called once the mail is accepted, before polling starts (not in Clerk): a page can show
   * "check your inbox" and when the link expires.
   */
  onSent?: (sent: VerificationSent) => void;
}

/** What `createEmailLinkFlow()` answers (Clerk's shape). */
export interface EmailLinkFlow {
  /**
   * Mails a link to `redirectUrl` (with `?code=<token>`; that page calls `verifyEmailLink`),
   * then resolves with the verified address once the link is used. Rejects with an
   * `EmailLinkError` when the link expires, is replaced by a newer code or link, or the flow
   * is cancelled; with a `KnownError` when the API refuses (e.g. `RateLimited` on the send, or
   * `ContactChannelNotFound` when the address is deleted meanwhile).
   */
  startEmailLinkFlow(options: StartEmailLinkFlowOptions): Promise<EmailAddress>;
  /** Stops polling; a pending `startEmailLinkFlow` rejects with code `cancelled`. */
  cancelEmailLinkFlow(): void;
}

/** A Clerk-style email address: a view of one contact channel. An immutable snapshot. */
export class EmailAddress {
  readonly id: string;
  /** The address (normalized by the server). */
  readonly emailAddress: string;
  /** Clerk's `verification`: status, strategy, attempts, expireAt. */
  readonly verification: ContactChannelVerification;
  readonly #channel: ContactChannel;

  /** @internal Use `channel.asEmailAddress()` or the user's methods. */
  constructor(channel: ContactChannel) {
    this.id = channel.id;
    this.emailAddress = channel.value;
    this.verification = channel.verification;
    this.#channel = channel;
    Object.freeze(this);
  }

  /** The channel behind this address (Stack's object model). */
  get contactChannel(): ContactChannel {
    return this.#channel;
  }

  /** The address. */
  toString(): string {
    return this.emailAddress;
  }

  /**
   * Mails a code or a link and answers the address with its new `verification` (Clerk's
   * `prepareVerification`). `redirectUrl` is required for `email_link` (or set
   * `verificationCallbackUrl` on the client); with `email_code` the mail also links to it.
   */
  async prepareVerification(options: PrepareVerificationOptions): Promise<EmailAddress> {
    await this.#sendFor(options);
    return this.reload();
  }

  #sendFor(options: PrepareVerificationOptions) {
    const callbackUrl = options.redirectUrl;
    if (options.strategy === "email_code") {
      return this.#channel.sendVerificationCode(callbackUrl === undefined ? {} : { callbackUrl });
    }
    if (options.strategy === "email_link") {
      return this.#channel.sendVerificationEmail(callbackUrl === undefined ? {} : { callbackUrl });
    }
    throw new TypeError(`contact-channels: unknown strategy ${String((options as { strategy: unknown }).strategy)}`);
  }

  /** Proves the code the user typed; answers the verified address (Clerk's `attemptVerification`). */
  async attemptVerification(options: { code: string }): Promise<EmailAddress> {
    return (await this.#channel.attemptVerification(options.code)).asEmailAddress();
  }

  /** Deletes the address (Clerk's `destroy`). */
  destroy(): Promise<void> {
    return this.#channel.delete();
  }

  /** Reads the address again (Clerk's `reload`). */
  async reload(): Promise<EmailAddress> {
    return (await this.#channel.refresh()).asEmailAddress();
  }

  /** Clerk's magic-link flow: see {@link EmailLinkFlow}. */
  createEmailLinkFlow(): EmailLinkFlow {
    let cancel: (() => void) | null = null;
    let cancelled = false;
    return {
      startEmailLinkFlow: ({ redirectUrl, onSent }) => {
        cancelled = false;
        return new Promise<EmailAddress>((resolve, reject) => {
          const run = pollUntilVerified(this.#channel, redirectUrl, onSent, (stop) => {
            cancel = stop;
            if (cancelled) stop();
          });
          run.then(resolve, reject);
        });
      },
      cancelEmailLinkFlow: () => {
        cancelled = true;
        cancel?.();
      },
    };
  }
}

/** Waits `ms`, or until `stopped` fires (then rejects with the cancel error). */
function sleep(ms: number, stopped: Promise<never>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const wait = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  return Promise.race([wait, stopped]).finally(() => clearTimeout(timer));
}

async function pollUntilVerified(
  channel: ContactChannel,
  redirectUrl: string,
  onSent: ((sent: VerificationSent) => void) | undefined,
  onStart: (stop: () => void) => void,
): Promise<EmailAddress> {
  const polling = scopeOf(channel).polling;
  let stop!: () => void;
  const stopped = new Promise<never>((_, reject) => {
    stop = () => reject(new EmailLinkError("cancelled", "The email link flow was cancelled."));
  });
  // A rejection nobody awaits yet must not surface as "unhandled": the race below awaits it.
  stopped.catch(() => {});
  onStart(stop);

  const sent = await Promise.race([channel.sendVerificationEmail({ callbackUrl: redirectUrl }), stopped]);
  onSent?.(sent);
  const expireAt = sent.expireAt.getTime();
  let wait = polling.initialMs;
  let networkFailures = 0;
  for (;;) {
    // Never sleep past the expiry: the answer right after it says "expired".
    const untilExpiry = expireAt - Date.now() + 50;
    await sleep(Math.min(wait, Math.max(untilExpiry, 0)), stopped);
    wait = Math.min(polling.maxMs, wait * polling.factor);
    let current: ContactChannel;
    try {
      current = await Promise.race([channel.refresh(), stopped]);
      networkFailures = 0;
    } catch (error) {
      const retryAfter = retryAfterOf(error);
      if (retryAfter !== null) {
        // A throttling gateway or a busy service: wait as long as it asks, then go on.
        wait = Math.max(wait, retryAfter * 1000);
        continue;
      }
      if (error instanceof TransportError && !(error instanceof UnexpectedResponseError)) {
        networkFailures += 1;
        if (networkFailures < polling.maxNetworkFailures) continue;
      }
      throw error;
    }
    if (current.isVerified) return current.asEmailAddress();
    const v = current.verification;
    if (v.strategy !== "email_link" || v.expireAt?.getTime() !== expireAt) {
      throw new EmailLinkError("failed", "A newer code or link replaced this link; it no longer works.");
    }
    if (v.status === "expired" || Date.now() >= expireAt + 1000) {
      throw new EmailLinkError("expired", "The link expired before it was used.");
    }
  }
}

function retryAfterOf(error: unknown): number | null {
  if (error instanceof KnownError && (error.status === 429 || error.status === 503)) {
    return error.retryAfterSeconds ?? 1;
  }
  if (error instanceof UnexpectedResponseError && (error.status === 429 || error.status === 503)) {
    return error.retryAfterSeconds ?? 1;
  }
  return null;
}
