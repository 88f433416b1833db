/**
 * The server side: your backend, holding a server key (`x-server-key`), acting on any user.
 * Refuses to run in a browser: a server key must never ship to one.
 */

import {
  ServerContactChannel,
  UserChannels,
  type Scope,
  type ServerCreateContactChannelOptions,
} from "./channel.js";
import { DEFAULT_POLLING, type LinkFlowPolling } from "./email-address.js";
import { Transport, type FetchLike } from "./http.js";

/** Options of {@link ContactChannelsServer}. */
export interface ContactChannelsServerOptions {
  /** Where the API is, e.g. `https://api.example.com`. */
  baseUrl: string;
  /** The server key whose SHA-256 the service has in `SERVER_KEY_SHA256`. */
  serverKey: string;
  /** Default `callbackUrl` of `sendVerificationEmail`. */
  verificationCallbackUrl?: string;
  /** Polling of `createEmailLinkFlow`. */
  linkFlowPolling?: Partial<LinkFlowPolling>;
  /** A `fetch` to use instead of the global one. */
  fetch?: FetchLike;
}

/** True in a browser page or a browser worker (not in Node, Deno or an edge runtime). */
export function isBrowser(): boolean {
  const g = globalThis as { document?: unknown; importScripts?: unknown; navigator?: { product?: string } };
  return typeof g.document === "object" || typeof g.importScripts === "function";
}

/** The client for your backend: every user, and `isVerified`. */
export class ContactChannelsServer {
  readonly #transport: Transport;
  readonly #polling: LinkFlowPolling;
  readonly #callbackUrl: string | undefined;

  constructor(options: ContactChannelsServerOptions) {
    if (isBrowser()) {
      throw new Error(
        "contact-channels: ContactChannelsServer holds a server key and must not run in a browser; use ContactChannelsClient there",
      );
    }
    if (typeof options?.serverKey !== "string" || options.serverKey === "") {
      throw new TypeError("contact-channels: serverKey is required");
    }
    const key = options.serverKey;
    this.#transport = new Transport(options, async () => ({ "x-server-key": key }));
    this.#polling = Object.freeze({ ...DEFAULT_POLLING, ...options.linkFlowPolling });
    this.#callbackUrl = options.verificationCallbackUrl;
  }

  /** One user of your app, by id (the JWT `sub` of that user). */
  user(userId: string): ServerUser {
    return new ServerUser(
      Object.freeze({
        transport: this.#transport,
        userPath: userId,
        server: true,
        polling: this.#polling,
        callbackUrl: this.#callbackUrl,
      }),
    );
  }
}

/** A user's channels as a server sees them (Stack's `ServerUser`). */
export class ServerUser extends UserChannels<ServerContactChannel> {
  readonly id: string;

  /** @internal */
  constructor(scope: Scope) {
    super(scope, ServerContactChannel);
    this.id = scope.userPath;
  }

  /** Adds an address; a server may create it verified. */
  override createContactChannel(options: ServerCreateContactChannelOptions): Promise<ServerContactChannel> {
    const body = this.createBody(options);
    if (options.isVerified !== undefined) body.is_verified = options.isVerified;
    return this.create(body);
  }
}
