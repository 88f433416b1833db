/**
 * The client side: acts as the signed-in user with `Authorization: Bearer <access token>`,
 * the token coming from your identity provider through a callback asked once per request.
 */

import { ContactChannel, UserChannels, type Scope } from "./channel.js";
import { DEFAULT_POLLING, type LinkFlowPolling } from "./email-address.js";
import { Transport, type FetchLike } from "./http.js";

/** Options of {@link ContactChannelsClient}. */
export interface ContactChannelsClientOptions {
  /** Where the API is, e.g. `https://api.example.com`. */
  baseUrl: string;
  /**
   * The signed-in user's access token (a JWT whose `sub` is the user id), asked for before
   * each request so a refreshed token is used. Answer null when nobody is signed in: the
   * request then fails with `KnownErrors.Unauthenticated`.
   */
  getAccessToken: () => Promise<string | null | undefined> | string | null | undefined;
  /** Default `callbackUrl` of `sendVerificationEmail` (your link landing page). */
  verificationCallbackUrl?: string;
  /** Polling of `createEmailLinkFlow` (defaults: 1 s growing ×1.5 to 8 s). */
  linkFlowPolling?: Partial<LinkFlowPolling>;
  /** A `fetch` to use instead of the global one. */
  fetch?: FetchLike;
}

/** The client for a browser, app or any code acting as one user. */
export class ContactChannelsClient {
  readonly #scope: Scope;

  constructor(options: ContactChannelsClientOptions) {
    if (typeof options?.getAccessToken !== "function") {
      throw new TypeError("contact-channels: getAccessToken is required (a function answering the user's JWT)");
    }
    const getAccessToken = options.getAccessToken;
    const transport = new Transport(options, async () => {
      const token = await getAccessToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    });
    this.#scope = Object.freeze({
      transport,
      userPath: "me",
      server: false,
      polling: Object.freeze({ ...DEFAULT_POLLING, ...options.linkFlowPolling }),
      callbackUrl: options.verificationCallbackUrl,
    });
  }

  /** The signed-in user (the token's `sub`). */
  currentUser(): CurrentUser {
    return new CurrentUser(this.#scope);
  }
}

/** The signed-in user's channels: Stack's `user.*ContactChannel*` and Clerk's `user.*EmailAddress*`. */
export class CurrentUser extends UserChannels<ContactChannel> {
  /** @internal */
  constructor(scope: Scope) {
    super(scope, ContactChannel);
  }
}
