/**
 * contact-channels: a fetch-based client for the contact-channels API, with Stack Auth's
 * `ContactChannel` and Clerk's `EmailAddress` object models. Runs in browsers, Node ≥ 18,
 * Deno and edge runtimes; no runtime dependencies.
 */

export { ContactChannelsClient, CurrentUser, type ContactChannelsClientOptions } from "./client.js";
export { ContactChannelsServer, ServerUser, isBrowser, type ContactChannelsServerOptions } from "./server.js";
export {
  ContactChannel,
  ServerContactChannel,
  type ContactChannelData,
  type ContactChannelUpdate,
  type ContactChannelVerification,
  type CreateContactChannelOptions,
  type CreateEmailAddressOptions,
  type SendVerificationCodeOptions,
  type SendVerificationEmailOptions,
  type ServerContactChannelUpdate,
  type ServerCreateContactChannelOptions,
  type VerificationSent,
} from "./channel.js";
export {
  EmailAddress,
  DEFAULT_POLLING,
  type EmailLinkFlow,
  type LinkFlowPolling,
  type PrepareVerificationOptions,
  type StartEmailLinkFlowOptions,
} from "./email-address.js";
export { checkEmailLink, tokenFromUrl, verifyEmailLink, type EmailLinkOptions } from "./links.js";
export {
  EmailLinkError,
  EmailLinkErrorCode,
  ErrorCode,
  KnownError,
  KnownErrors,
  NetworkError,
  TransportError,
  UnexpectedResponseError,
  isEmailLinkError,
  knownErrorFrom,
  type KnownErrorInit,
} from "./errors.js";
export type { FetchLike } from "./http.js";
export type * from "./wire.js";
