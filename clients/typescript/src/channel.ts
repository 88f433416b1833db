/**
 * Stack Auth's object model: `ContactChannel` (a client acting as its user) and
 * `ServerContactChannel` (a server with its key). Each is an immutable snapshot of one
 * channel; a method that changes the channel answers a new snapshot.
 */

import type {
  WireChannel,
  WireChannelList,
  WireCreateBody,
  WirePatchBody,
  WireSendBody,
  WireSent,
  WireStrategy,
  WireSuccess,
  WireVerificationStatus,
} from "./wire.js";
import type { Transport } from "./http.js";
import { EmailAddress, type LinkFlowPolling } from "./email-address.js";

/** Verification state of a channel (`verification` of the API, with a `Date`). */
export interface ContactChannelVerification {
  /** `verified` exactly when `isVerified`; `pending` while a code or link is outstanding. */
  readonly status: WireVerificationStatus;
  /** Strategy of the outstanding or last code or link, or null. */
  readonly strategy: WireStrategy | null;
  /** Wrong code guesses so far. */
  readonly attempts: number;
  /** When the outstanding or last code or link stops working, or null. */
  readonly expireAt: Date | null;
}

/** What a send answered. */
export interface VerificationSent {
  readonly strategy: WireStrategy;
  /** The code or link stops working at exactly this time. */
  readonly expireAt: Date;
}

/** @internal Where a channel lives: the transport and the user path segment (`me` or an id). */
export interface Scope {
  readonly transport: Transport;
  /** `me` for a client, the user id for a server. */
  readonly userPath: string;
  readonly server: boolean;
  readonly polling: LinkFlowPolling;
  /** Default `callback_url` for links, from the client options. */
  readonly callbackUrl: string | undefined;
}

/** @internal */
export function channelPath(scope: Scope, id?: string): string {
  const base = `/contact-channels/${encodeURIComponent(scope.userPath)}`;
  return id === undefined ? base : `${base}/${encodeURIComponent(id)}`;
}

/** Options of `sendVerificationEmail`. */
export interface SendVerificationEmailOptions {
  /**
   * The page of your app the link opens (with `?code=<token>` added): it calls
   * `verifyEmailLink`. Its origin must be allowed by the server (`ALLOWED_CALLBACK_URLS`).
   * Defaults to the client's `verificationCallbackUrl`; without either the call rejects with a
   * `TypeError` and sends nothing.
   */
  callbackUrl?: string;
}

/** Options of `sendVerificationCode`. */
export interface SendVerificationCodeOptions {
  /** Optional: the mail also links to this page, where the user types the code. */
  callbackUrl?: string;
}

/** Fields a client may change. */
export interface ContactChannelUpdate {
  value?: string;
  usedForAuth?: boolean;
  isPrimary?: boolean;
}

/** Fields a server may change: also `isVerified`. */
export interface ServerContactChannelUpdate extends ContactChannelUpdate {
  isVerified?: boolean;
}

/** A channel as a client (the signed-in user) sees it. An immutable snapshot. */
export class ContactChannel {
  readonly id: string;
  readonly userId: string;
  readonly type: "email";
  /** The address, normalized by the server (trimmed, lower-cased, punycode domain). */
  readonly value: string;
  readonly isPrimary: boolean;
  readonly isVerified: boolean;
  readonly usedForAuth: boolean;
  readonly createdAt: Date;
  readonly verification: ContactChannelVerification;
  readonly #scope: Scope;

  /** @internal Channels come from the client's methods, not from this constructor. */
  constructor(wire: WireChannel, scope: Scope) {
    this.id = wire.id;
    this.userId = wire.user_id;
    this.type = wire.type;
    this.value = wire.value;
    this.isPrimary = wire.is_primary;
    this.isVerified = wire.is_verified;
    this.usedForAuth = wire.used_for_auth;
    this.createdAt = new Date(wire.created_at_millis);
    const v = wire.verification;
    this.verification = Object.freeze({
      status: v.status,
      strategy: v.strategy,
      attempts: v.attempts,
      expireAt: v.expires_at_millis === null ? null : new Date(v.expires_at_millis),
    });
    this.#scope = scope;
    Object.freeze(this);
  }

  /** A new snapshot of the same kind, in the same scope. */
  protected wrap(wire: WireChannel): this {
    const kind = this.constructor as new (wire: WireChannel, scope: Scope) => this;
    return new kind(wire, this.#scope);
  }

  /** @internal */
  protected get scope(): Scope {
    return this.#scope;
  }

  #path(suffix = ""): string {
    return channelPath(this.#scope, this.id) + suffix;
  }

  async #send(body: WireSendBody): Promise<VerificationSent> {
    const sent = await this.#scope.transport.request<WireSent>(
      "POST",
      this.#path("/send-verification-code"),
      body,
    );
    return Object.freeze({ strategy: sent.strategy, expireAt: new Date(sent.expires_at_millis) });
  }

  /**
   * Mails a verification link (Stack's `sendVerificationEmail`). Replaces any outstanding code
   * or link. Rejects with `KnownErrors.RateLimited` (see `retryAfterSeconds`) when a mail went to
   * this address moments ago.
   */
  async sendVerificationEmail(options: SendVerificationEmailOptions = {}): Promise<VerificationSent> {
    const callbackUrl = options.callbackUrl ?? this.#scope.callbackUrl;
    if (callbackUrl === undefined) {
      throw new TypeError(
        "contact-channels: a link needs a callbackUrl (the page it opens): pass one, or set verificationCallbackUrl on the client",
      );
    }
    return this.#send({ strategy: "email_link", callback_url: callbackUrl });
  }

  /** Mails a 6-digit code (Clerk's one-time-code flow); then call `attemptVerification(code)`. */
  sendVerificationCode(options: SendVerificationCodeOptions = {}): Promise<VerificationSent> {
    return this.#send({
      strategy: "email_code",
      ...(options.callbackUrl !== undefined && { callback_url: options.callbackUrl }),
    });
  }

  /** Proves the code the user typed; answers the channel, now verified. */
  async attemptVerification(code: string): Promise<this> {
    const wire = await this.#scope.transport.request<WireChannel>(
      "POST",
      this.#path("/attempt-verification"),
      { code },
    );
    return this.wrap(wire);
  }

  /** Changes the channel; answers the new snapshot. A new value makes it unverified. */
  async update(data: ContactChannelUpdate): Promise<this> {
    return this.wrap(await this.patch(patchBody(data)));
  }

  /** @internal */
  protected patch(body: WirePatchBody): Promise<WireChannel> {
    return this.#scope.transport.request<WireChannel>("PATCH", this.#path(), body);
  }

  /** Deletes the channel (its outstanding code or link stops working). */
  async delete(): Promise<void> {
    await this.#scope.transport.request<WireSuccess>("DELETE", this.#path());
  }

  /** Reads the channel again. */
  async refresh(): Promise<this> {
    return this.wrap(await this.#scope.transport.request<WireChannel>("GET", this.#path()));
  }

  /** The same channel as a Clerk-style `EmailAddress`. */
  asEmailAddress(): EmailAddress {
    return new EmailAddress(this);
  }

  /** The address. */
  toString(): string {
    return this.value;
  }

  /** The snapshot as plain data (no methods), e.g. for logs or a framework's state. */
  toJSON(): ContactChannelData {
    return {
      id: this.id,
      userId: this.userId,
      type: this.type,
      value: this.value,
      isPrimary: this.isPrimary,
      isVerified: this.isVerified,
      usedForAuth: this.usedForAuth,
      createdAt: this.createdAt,
      verification: this.verification,
    };
  }
}

/** The data fields of a {@link ContactChannel}. */
export interface ContactChannelData {
  id: string;
  userId: string;
  type: "email";
  value: string;
  isPrimary: boolean;
  isVerified: boolean;
  usedForAuth: boolean;
  createdAt: Date;
  verification: ContactChannelVerification;
}

/** A channel as a server (holding the server key) sees it: `update` may also set `isVerified`. */
export class ServerContactChannel extends ContactChannel {
  /** Changes the channel, `isVerified` included (`false` on a verified channel un-verifies it). */
  override async update(data: ServerContactChannelUpdate): Promise<this> {
    const body = patchBody(data);
    if (data.isVerified !== undefined) body.is_verified = data.isVerified;
    return this.wrap(await this.patch(body));
  }
}

function patchBody(data: ContactChannelUpdate): WirePatchBody {
  const body: WirePatchBody = {};
  if (data.value !== undefined) body.value = data.value;
  if (data.usedForAuth !== undefined) body.used_for_auth = data.usedForAuth;
  if (data.isPrimary !== undefined) body.is_primary = data.isPrimary;
  return body;
}

/** What `createContactChannel` takes (Stack's shape). */
export interface CreateContactChannelOptions {
  type: "email";
  value: string;
  /** Whether the address signs the user in (unique across users). */
  usedForAuth: boolean;
  isPrimary?: boolean;
}

/** What a server's `createContactChannel` takes: also `isVerified`. */
export interface ServerCreateContactChannelOptions extends CreateContactChannelOptions {
  isVerified?: boolean;
}

/** Options of `createEmailAddress` (Clerk's shape). */
export interface CreateEmailAddressOptions {
  email: string;
  /** Default false: a Clerk address is not a sign-in identifier until you say so. */
  usedForAuth?: boolean;
  isPrimary?: boolean;
}

/** @internal The methods a client's current user and a server's user share. */
export class UserChannels<C extends ContactChannel> {
  readonly #scope: Scope;
  readonly #kind: new (wire: WireChannel, scope: Scope) => C;

  /** @internal */
  constructor(scope: Scope, kind: new (wire: WireChannel, scope: Scope) => C) {
    this.#scope = scope;
    this.#kind = kind;
  }

  #wrap(wire: WireChannel): C {
    return new this.#kind(wire, this.#scope);
  }

  /** @internal */
  protected async create(body: WireCreateBody): Promise<C> {
    return this.#wrap(await this.#scope.transport.request<WireChannel>("POST", "/contact-channels", body));
  }

  /** @internal */
  protected createBody(options: CreateContactChannelOptions): WireCreateBody {
    const body: WireCreateBody = {
      user_id: this.#scope.userPath,
      type: options.type,
      value: options.value,
      used_for_auth: options.usedForAuth,
    };
    if (options.isPrimary !== undefined) body.is_primary = options.isPrimary;
    return body;
  }

  /** Every channel of the user, oldest first. */
  async listContactChannels(): Promise<C[]> {
    const query = `?user_id=${encodeURIComponent(this.#scope.userPath)}`;
    const list = await this.#scope.transport.request<WireChannelList>("GET", `/contact-channels${query}`);
    return list.items.map((wire) => this.#wrap(wire));
  }

  /** Adds an address (unverified) to the user. */
  createContactChannel(options: CreateContactChannelOptions): Promise<C> {
    return this.create(this.createBody(options));
  }

  /** One channel; rejects with `KnownErrors.ContactChannelNotFound` when there is none. */
  async getContactChannel(id: string): Promise<C> {
    return this.#wrap(await this.#scope.transport.request<WireChannel>("GET", channelPath(this.#scope, id)));
  }

  /** The user's primary channel, or null. */
  async primaryContactChannel(): Promise<C | null> {
    return (await this.listContactChannels()).find((c) => c.isPrimary) ?? null;
  }

  /** Clerk's `user.createEmailAddress({ email })`: adds an address, answered as an `EmailAddress`. */
  async createEmailAddress(options: CreateEmailAddressOptions): Promise<EmailAddress> {
    const channel = await this.createContactChannel({
      type: "email",
      value: options.email,
      usedForAuth: options.usedForAuth ?? false,
      ...(options.isPrimary !== undefined && { isPrimary: options.isPrimary }),
    });
    return channel.asEmailAddress();
  }

  /** Clerk's `user.emailAddresses`, read fresh. */
  async listEmailAddresses(): Promise<EmailAddress[]> {
    return (await this.listContactChannels()).map((c) => c.asEmailAddress());
  }
}

/** @internal */
export function scopeOf(channel: ContactChannel): Scope {
  return (channel as unknown as { scope: Scope }).scope;
}
