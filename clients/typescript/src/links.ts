/**
 * The link landing page: your page at the `callbackUrl` gets `?code=<token>`; it reads the
 * token with `tokenFromUrl` and proves it with `verifyEmailLink`. No credentials are needed:
 * the token is one.
 */

import { Transport, type FetchLike } from "./http.js";
import type { WireCheck, WireSuccess } from "./wire.js";

/** Options of {@link verifyEmailLink} and {@link checkEmailLink}. */
export interface EmailLinkOptions {
  baseUrl: string;
  /** The `code` query parameter of the link (see {@link tokenFromUrl}). */
  token: string;
  fetch?: FetchLike;
}

function transport(options: EmailLinkOptions): Transport {
  if (typeof options?.token !== "string" || options.token === "") {
    throw new TypeError("contact-channels: token is required (the link's code parameter)");
  }
  return new Transport(options, async () => ({}));
}

/**
 * Verifies the address the link was sent to and uses the link up. Rejects with
 * `KnownErrors.VerificationCodeNotFound`, `VerificationCodeExpired` or
 * `VerificationCodeAlreadyUsed` (the link was clicked before: the address is verified).
 */
export async function verifyEmailLink(options: EmailLinkOptions): Promise<void> {
  await transport(options).request<WireSuccess>("POST", "/contact-channels/verify", { code: options.token });
}

/** Resolves true when the link would verify, without using it up; rejects as {@link verifyEmailLink}. */
export async function checkEmailLink(options: EmailLinkOptions): Promise<boolean> {
  const answer = await transport(options).request<WireCheck>("POST", "/contact-channels/verify/check-code", {
    code: options.token,
  });
  return answer.is_code_valid === true;
}

/** The link token in a URL (`?code=…`), e.g. `tokenFromUrl(location.href)`; null when absent. */
export function tokenFromUrl(url: string | URL): string | null {
  const parsed = typeof url === "string" ? new URL(url, "http://invalid.invalid") : url;
  const token = parsed.searchParams.get("code");
  return token === null || token === "" ? null : token;
}
