/**
 * Type-level tests of the public API as a user sees it (compiled against dist/*.d.ts through
 * the package's own name; `npm run typecheck`). A `@ts-expect-error` line fails the check when
 * the error it expects disappears.
 */
import {
  ContactChannelsClient,
  ContactChannelsServer,
  KnownError,
  KnownErrors,
  type ContactChannel,
  type EmailAddress,
  type ServerContactChannel,
  type ErrorCode,
} from "contact-channels";

declare const token: string;

export async function clientSide(): Promise<void> {
  const cc = new ContactChannelsClient({ baseUrl: "https://api.example.com", getAccessToken: async () => token });
  const me = cc.currentUser();
  const list: ContactChannel[] = await me.listContactChannels();
  const created = await me.createContactChannel({ type: "email", value: "a@example.com", usedForAuth: true, isPrimary: true });
  const primary: ContactChannel | null = await me.primaryContactChannel();
  const updated: ContactChannel = await created.update({ value: "b@example.com", usedForAuth: false, isPrimary: false });
  const createdAt: Date = updated.createdAt;
  const expireAt: Date | null = updated.verification.expireAt;
  // @ts-expect-error only a server may set isVerified
  await created.update({ isVerified: true });
  // @ts-expect-error only a server may create a verified channel
  await me.createContactChannel({ type: "email", value: "a@example.com", usedForAuth: true, isVerified: true });
  // @ts-expect-error snapshots are read-only
  created.isPrimary = true;
  // @ts-expect-error email is the only type
  await me.createContactChannel({ type: "phone", value: "+1", usedForAuth: false });
  const sent = await created.sendVerificationEmail({ callbackUrl: "https://app.example.com/verify" });
  const until: Date = sent.expireAt;
  await created.sendVerificationCode();
  const verified: ContactChannel = await created.attemptVerification("123456");
  await verified.delete();
  const again: ContactChannel = await verified.refresh();

  const address: EmailAddress = await me.createEmailAddress({ email: "c@example.com" });
  const addresses: EmailAddress[] = await me.listEmailAddresses();
  const viewed: EmailAddress = again.asEmailAddress();
  const prepared: EmailAddress = await address.prepareVerification({ strategy: "email_code" });
  // @ts-expect-error Clerk's strategies only
  await address.prepareVerification({ strategy: "phone_code" });
  const done: EmailAddress = await prepared.attemptVerification({ code: "123456" });
  const flow = done.createEmailLinkFlow();
  const linked: EmailAddress = await flow.startEmailLinkFlow({ redirectUrl: "https://app.example.com/verify" });
  flow.cancelEmailLinkFlow();
  await linked.destroy();
  void [list, primary, createdAt, expireAt, until, addresses, viewed];
}

export async function serverSide(): Promise<void> {
  const server = new ContactChannelsServer({ baseUrl: "https://api.example.com", serverKey: "k" });
  const user = server.user("user_123");
  const channel: ServerContactChannel = await user.createContactChannel({
    type: "email",
    value: "a@example.com",
    usedForAuth: true,
    isVerified: true,
  });
  const unverified: ServerContactChannel = await channel.update({ isVerified: false });
  const refreshed: ServerContactChannel = await unverified.refresh();
  const list: ServerContactChannel[] = await user.listContactChannels();
  void [refreshed, list];
}

export function errors(e: unknown): number | null {
  if (e instanceof KnownErrors.RateLimited) {
    const code: "RATE_LIMITED" = e.code;
    void code;
    return e.retryAfterSeconds;
  }
  if (e instanceof KnownError) {
    const details: Readonly<Record<string, unknown>> = e.details;
    void details;
    return e.status;
  }
  const c: ErrorCode = "VERIFICATION_CODE_INCORRECT";
  // @ts-expect-error not a code of the contract
  const wrong: ErrorCode = "NOPE";
  void [c, wrong];
  return null;
}
