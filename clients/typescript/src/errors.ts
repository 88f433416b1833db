/**
 * Errors. Every non-2xx answer of the API becomes a {@link KnownError} (one subclass per code
 * of the contract, under {@link KnownErrors}); a request that got no answer, or an answer that
 * is not the API's JSON (a gateway's HTML page, a proxy's plain text), becomes a
 * {@link TransportError}. Nothing is swallowed: each method either resolves with what the API
 * answered or rejects with one of these.
 */

/** Every error code of the contract (docs/api.md §1–§5), as constants. */
export const ErrorCode = {
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  NOT_FOUND: "NOT_FOUND",
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  UNAUTHENTICATED: "UNAUTHENTICATED",
  INVALID_ACCESS_TOKEN: "INVALID_ACCESS_TOKEN",
  INVALID_SERVER_KEY: "INVALID_SERVER_KEY",
  SCHEMA_ERROR: "SCHEMA_ERROR",
  CANNOT_GET_OWN_USER_WITHOUT_USER: "CANNOT_GET_OWN_USER_WITHOUT_USER",
  FORBIDDEN: "FORBIDDEN",
  CONTACT_CHANNEL_NOT_FOUND: "CONTACT_CHANNEL_NOT_FOUND",
  CONTACT_CHANNEL_ALREADY_EXISTS: "CONTACT_CHANNEL_ALREADY_EXISTS",
  CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE:
    "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE",
  TOO_MANY_CONTACT_CHANNELS: "TOO_MANY_CONTACT_CHANNELS",
  EMAIL_ALREADY_VERIFIED: "EMAIL_ALREADY_VERIFIED",
  REDIRECT_URL_NOT_WHITELISTED: "REDIRECT_URL_NOT_WHITELISTED",
  RATE_LIMITED: "RATE_LIMITED",
  EMAIL_DELIVERY_FAILED: "EMAIL_DELIVERY_FAILED",
  VERIFICATION_CODE_NOT_FOUND: "VERIFICATION_CODE_NOT_FOUND",
  VERIFICATION_CODE_EXPIRED: "VERIFICATION_CODE_EXPIRED",
  VERIFICATION_CODE_ALREADY_USED: "VERIFICATION_CODE_ALREADY_USED",
  VERIFICATION_CODE_MAX_ATTEMPTS_REACHED: "VERIFICATION_CODE_MAX_ATTEMPTS_REACHED",
  VERIFICATION_CODE_INCORRECT: "VERIFICATION_CODE_INCORRECT",
  INTERNAL_ERROR: "INTERNAL_ERROR",
} as const;

/** A code of the contract. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What a {@link KnownError} is built from. */
export interface KnownErrorInit {
  code: string;
  status: number;
  message: string;
  details?: Record<string, unknown> | null | undefined;
  retryAfterSeconds?: number | null | undefined;
}

/**
 * An error answer of the API: `{"code", "error", "details"}` with `x-known-error`.
 * `code` is one of {@link ErrorCode} (or a code a newer server added: it is kept as sent).
 */
export class KnownError extends Error {
  /** The contract's code, e.g. `RATE_LIMITED`. */
  readonly code: string;
  /** The HTTP status. */
  readonly status: number;
  /** The `details` object of the body, `{}` when it had none. */
  readonly details: Readonly<Record<string, unknown>>;
  /** Whole seconds to wait before trying again (`retry-after`), or null. */
  readonly retryAfterSeconds: number | null;

  constructor(init: KnownErrorInit) {
    super(init.message);
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status;
    this.details = Object.freeze({ ...(init.details ?? {}) });
    this.retryAfterSeconds = init.retryAfterSeconds ?? null;
  }

  /** True when `error` is a KnownError, and of `code` when one is given. */
  static is(error: unknown, code?: string): error is KnownError {
    return error instanceof KnownError && (code === undefined || error.code === code);
  }
}

type KnownErrorClass<C extends ErrorCode> = {
  new (init: Omit<KnownErrorInit, "code"> & { code?: string }): KnownError & { readonly code: C };
  readonly code: C;
  readonly status: number;
};

function define<C extends ErrorCode>(name: string, code: C, status: number): KnownErrorClass<C> {
  const cls = class extends KnownError {
    static readonly code = code;
    static readonly status = status;
    constructor(init: Omit<KnownErrorInit, "code">) {
      super({ ...init, code });
    }
  };
  Object.defineProperty(cls, "name", { value: name });
  return cls as unknown as KnownErrorClass<C>;
}

/**
 * One subclass of {@link KnownError} per code, for `instanceof`:
 * `if (e instanceof KnownErrors.RateLimited) wait(e.retryAfterSeconds)`.
 */
export const KnownErrors = {
  /** 413: the request body is over 16 KiB. */
  PayloadTooLarge: define("PayloadTooLarge", ErrorCode.PAYLOAD_TOO_LARGE, 413),
  /** 404: no route at this path (a wrong `baseUrl`). */
  NotFound: define("NotFound", ErrorCode.NOT_FOUND, 404),
  /** 405: the path exists, not with this method. */
  MethodNotAllowed: define("MethodNotAllowed", ErrorCode.METHOD_NOT_ALLOWED, 405),
  /** 401: no credentials were sent (the access token callback gave none). */
  Unauthenticated: define("Unauthenticated", ErrorCode.UNAUTHENTICATED, 401),
  /** 401: the access token is invalid or expired. */
  InvalidAccessToken: define("InvalidAccessToken", ErrorCode.INVALID_ACCESS_TOKEN, 401),
  /** 401: the server key is wrong. */
  InvalidServerKey: define("InvalidServerKey", ErrorCode.INVALID_SERVER_KEY, 401),
  /** 400: a field is invalid (the message names it), e.g. an invalid email address. */
  SchemaError: define("SchemaError", ErrorCode.SCHEMA_ERROR, 400),
  /** 400: a server used the user id `me`. */
  CannotGetOwnUserWithoutUser: define(
    "CannotGetOwnUserWithoutUser",
    ErrorCode.CANNOT_GET_OWN_USER_WITHOUT_USER,
    400,
  ),
  /** 403: a client acted on another user, or set a server-only field. */
  Forbidden: define("Forbidden", ErrorCode.FORBIDDEN, 403),
  /** 404: no such channel (for this user). */
  ContactChannelNotFound: define("ContactChannelNotFound", ErrorCode.CONTACT_CHANNEL_NOT_FOUND, 404),
  /** 409: the user has this address already; `details.contact_channel_id` names it. */
  ContactChannelAlreadyExists: define(
    "ContactChannelAlreadyExists",
    ErrorCode.CONTACT_CHANNEL_ALREADY_EXISTS,
    409,
  ),
  /** 409: another user signs in with this address. */
  ContactChannelAlreadyUsedForAuthBySomeoneElse: define(
    "ContactChannelAlreadyUsedForAuthBySomeoneElse",
    ErrorCode.CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE,
    409,
  ),
  /** 409: the user has the maximum number of channels. */
  TooManyContactChannels: define("TooManyContactChannels", ErrorCode.TOO_MANY_CONTACT_CHANNELS, 409),
  /** 409: the address is verified already. */
  EmailAlreadyVerified: define("EmailAlreadyVerified", ErrorCode.EMAIL_ALREADY_VERIFIED, 409),
  /** 400: the callback URL's origin is not allowed by the server. */
  RedirectUrlNotWhitelisted: define(
    "RedirectUrlNotWhitelisted",
    ErrorCode.REDIRECT_URL_NOT_WHITELISTED,
    400,
  ),
  /** 429: a mail went to this address moments ago; see `retryAfterSeconds`. */
  RateLimited: define("RateLimited", ErrorCode.RATE_LIMITED, 429),
  /** 502: the mail service refused the mail; nothing changed. */
  EmailDeliveryFailed: define("EmailDeliveryFailed", ErrorCode.EMAIL_DELIVERY_FAILED, 502),
  /** 404: no code outstanding, or an unknown, replaced or used-up link. */
  VerificationCodeNotFound: define(
    "VerificationCodeNotFound",
    ErrorCode.VERIFICATION_CODE_NOT_FOUND,
    404,
  ),
  /** 400: the code or link has expired: send a new one. */
  VerificationCodeExpired: define("VerificationCodeExpired", ErrorCode.VERIFICATION_CODE_EXPIRED, 400),
  /** 409: this link already verified its address. */
  VerificationCodeAlreadyUsed: define(
    "VerificationCodeAlreadyUsed",
    ErrorCode.VERIFICATION_CODE_ALREADY_USED,
    409,
  ),
  /** 400: the code is burned after too many wrong guesses: send a new one. */
  VerificationCodeMaxAttemptsReached: define(
    "VerificationCodeMaxAttemptsReached",
    ErrorCode.VERIFICATION_CODE_MAX_ATTEMPTS_REACHED,
    400,
  ),
  /** 400: wrong code; `details.attempts_remaining` guesses are left. */
  VerificationCodeIncorrect: define(
    "VerificationCodeIncorrect",
    ErrorCode.VERIFICATION_CODE_INCORRECT,
    400,
  ),
  /** 500: an unexpected failure of the service. */
  InternalError: define("InternalError", ErrorCode.INTERNAL_ERROR, 500),
} as const;

const byCode: ReadonlyMap<string, KnownErrorClass<ErrorCode>> = new Map(
  Object.values(KnownErrors).map((cls) => [cls.code, cls as KnownErrorClass<ErrorCode>]),
);

/** The {@link KnownError} (subclass, when the code is known) for an error answer. */
export function knownErrorFrom(init: KnownErrorInit): KnownError {
  const cls = byCode.get(init.code);
  return cls ? new cls(init) : new KnownError(init);
}

/**
 * The request got no usable answer from the API: the network failed ({@link NetworkError}) or
 * something other than the API answered ({@link UnexpectedResponseError}). Worth retrying.
 */
export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** `fetch` itself failed: no connection, DNS, CORS, an aborted request. `cause` has the reason. */
export class NetworkError extends TransportError {}

/**
 * An answer that is not the API's: not JSON, or a JSON error without a `code` (e.g. an API
 * Gateway `{"message":"Service Unavailable"}`), or a success body of the wrong shape.
 */
export class UnexpectedResponseError extends TransportError {
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The first 500 characters of the body, for logs. */
  readonly body: string;
  /** `retry-after` in whole seconds, when the answer had one (gateways send it on 429/503). */
  readonly retryAfterSeconds: number | null;

  constructor(status: number, body: string, retryAfterSeconds: number | null, why: string) {
    super(`Unexpected answer from the contact-channels API (HTTP ${status}): ${why}`);
    this.status = status;
    this.body = body.slice(0, 500);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Why an email link flow ended without a verified address (Clerk's `EmailLinkErrorCode`). */
export const EmailLinkErrorCode = {
  /** The link ran out before it was used. */
  Expired: "expired",
  /** The link can no longer work: a newer code or link replaced it, or the code failed. */
  Failed: "failed",
  /** `cancelEmailLinkFlow()` was called. */
  Cancelled: "cancelled",
} as const;

/** A code of {@link EmailLinkErrorCode}. */
export type EmailLinkErrorCode = (typeof EmailLinkErrorCode)[keyof typeof EmailLinkErrorCode];

/** How `startEmailLinkFlow()` rejects when the link will never verify the address. */
export class EmailLinkError extends Error {
  readonly code: EmailLinkErrorCode;

  constructor(code: EmailLinkErrorCode, message: string) {
    super(message);
    this.name = "EmailLinkError";
    this.code = code;
  }
}

/** True when `error` is an {@link EmailLinkError} (Clerk's `isEmailLinkError`). */
export function isEmailLinkError(error: unknown): error is EmailLinkError {
  return error instanceof EmailLinkError;
}
