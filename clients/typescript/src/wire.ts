/**
 * The wire types: the JSON the API sends and accepts, field for field (snake_case), as the
 * contract (docs/api.md §3, §5) defines them. Nothing else in the SDK names a wire field.
 *
 * These are written by hand today. When the repository commits `openapi.json`,
 * `npm run check:openapi` generates types from it with openapi-typescript and type-checks
 * that every type here agrees with the generated one (responses the server sends must be
 * readable as these types; request bodies built from these types must be accepted). To
 * switch to the generated types later, replace each alias below with the generated type of
 * the same route (e.g. `paths["/api/v1/contact-channels"]["post"]["responses"][201]…`):
 * the rest of the SDK only imports the names exported here.
 */

/** `type` of a channel: only email exists today. */
export type WireChannelType = "email";

/** `verification.status`; `verified` exactly when `is_verified` is true. */
export type WireVerificationStatus = "unverified" | "pending" | "expired" | "failed" | "verified";

/** How a verification mail proves ownership. */
export type WireStrategy = "email_code" | "email_link";

/** `verification` of the channel object: the outstanding or last code or link. */
export interface WireVerification {
  status: WireVerificationStatus;
  strategy: WireStrategy | null;
  attempts: number;
  expires_at_millis: number | null;
}

/** The contact channel object (docs/api.md §3). */
export interface WireChannel {
  id: string;
  user_id: string;
  type: WireChannelType;
  value: string;
  is_primary: boolean;
  is_verified: boolean;
  used_for_auth: boolean;
  created_at_millis: number;
  verification: WireVerification;
}

/** `GET /api/v1/contact-channels` (§5.2). */
export interface WireChannelList {
  items: WireChannel[];
  is_paginated: boolean;
}

/** `POST /api/v1/contact-channels` body (§5.1). `is_verified` is server only. */
export interface WireCreateBody {
  user_id: string;
  type: WireChannelType;
  value: string;
  used_for_auth: boolean;
  is_primary?: boolean | null;
  is_verified?: boolean | null;
}

/** `PATCH /api/v1/contact-channels/{user_id}/{id}` body (§5.4). `is_verified` is server only. */
export interface WirePatchBody {
  value?: string | null;
  type?: WireChannelType | null;
  used_for_auth?: boolean | null;
  is_primary?: boolean | null;
  is_verified?: boolean | null;
}

/**
 * `POST …/send-verification-code` body (§5.6): `callback_url` is required unless the strategy
 * is `email_code` (`email_link` is the default).
 */
export type WireSendBody =
  | { strategy: "email_code"; callback_url?: string | null }
  | { strategy?: "email_link" | null; callback_url: string };

/** `POST …/send-verification-code` answer. */
export interface WireSent {
  success: boolean;
  strategy: WireStrategy;
  expires_at_millis: number;
}

/** `POST …/attempt-verification`, `POST /verify` and `/verify/check-code` body (§5.7). */
export interface WireCodeBody {
  code: string;
}

/** `DELETE …` and `POST /verify` answer. */
export interface WireSuccess {
  success: boolean;
}

/** `POST /verify/check-code` answer. */
export interface WireCheck {
  is_code_valid: boolean;
}

/** Every error body (§1), also named by the `x-known-error` header. */
export interface WireError {
  code: string;
  error: string;
  details?: Record<string, unknown> | null;
}
