// The link landing page: the mailed link opens it with ?code=<token>; it proves the token.
// No sign-in needed: the token is the credential. (`callbackUrl` of the account page.)
import { KnownErrors, TransportError, tokenFromUrl, verifyEmailLink } from "contact-channels";

const result = document.getElementById("result");
const say = (text, outcome) => {
  result.textContent = text;
  document.body.dataset.outcome = outcome;
};

const token = tokenFromUrl(location.href);
if (!token) {
  say("This page needs the link from your verification mail.", "no-token");
} else {
  try {
    await verifyEmailLink({ baseUrl: location.origin, token });
    say("Your email address is verified. You can close this tab.", "verified");
  } catch (error) {
    if (error instanceof KnownErrors.VerificationCodeAlreadyUsed) say("This link was used already: the address is verified.", "used");
    else if (error instanceof KnownErrors.VerificationCodeExpired) say("This link has expired. Send a new one from your account page.", "expired");
    else if (error instanceof KnownErrors.VerificationCodeNotFound) say("This link no longer works (a newer one was sent, or the address changed).", "not-found");
    else if (error instanceof TransportError) say(`Cannot reach the server: ${error.message}`, "network");
    else {
      say(`Not verified: ${error.message}`, "error");
      throw error;
    }
  }
}
