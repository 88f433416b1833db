// Spawns the real local server (`contact-channels-local`, the binary `make run` runs) on a
// free loopback port with its own data directory, as tests/support/mod.rs does for the Rust
// suites, and reads its mailbox. CC_LOCAL_BIN names the binary (the Makefile sets it).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(fileURLToPath(new URL("../../../..", import.meta.url)));
export const BIN = process.env.CC_LOCAL_BIN || join(repo, "target/debug/contact-channels-local");
export const SERVER_KEY = "local-dev-server-key";

/** Starts a server with `env` on top of the local defaults; `stop()` kills it. */
export async function startServer(env = {}) {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} is missing: run \`cargo build -p cc-local\` (make test-sdk does it)`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "cc-sdk-"));
  const child = spawn(BIN, [], {
    env: { PATH: process.env.PATH, PORT: "0", DATA_DIR: dataDir, RUST_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const base = await new Promise((resolveBase, reject) => {
    const timer = setTimeout(() => reject(new Error(`local server did not start: ${stderr}`)), 15000);
    child.stdout.on("data", (d) => {
      stdout += d;
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolveBase(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`local server exited with ${code}: ${stderr}`));
    });
  });
  child.removeAllListeners("exit");
  return {
    base,
    logs: () => stderr,
    /** A dev client token for `user`, minted by the binary's `token` subcommand. */
    token: (user) => execFileSync(BIN, ["token", user], { env: { PATH: process.env.PATH, ...env }, encoding: "utf8" }).trim(),
    async stop() {
      child.kill("SIGKILL");
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Every mail in the local mailbox, newest first (`/_dev/mailbox.json`). */
export async function mailbox(base) {
  const answer = await fetch(`${base}/_dev/mailbox.json`);
  if (!answer.ok) throw new Error(`mailbox: HTTP ${answer.status}`);
  return answer.json();
}

/** Waits for the newest mail to `to` sent after `since` (ms), up to 5 s. */
export async function mailTo(base, to, since = 0) {
  for (let i = 0; i < 100; i++) {
    const mail = (await mailbox(base)).find((m) => m.to === to && m.sent_at_millis >= since);
    if (mail) return mail;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no mail to ${to}`);
}

/** The 6-digit code in a mail's text. */
export function codeIn(mail) {
  const m = /\b(\d{6})\b/.exec(mail.text);
  if (!m) throw new Error(`no code in: ${mail.text}`);
  return m[1];
}

/** The verification link in a mail's text. */
export function linkIn(mail) {
  const m = /(https?:\/\/\S*[?&]code=[A-Za-z0-9_-]+)/.exec(mail.text);
  if (!m) throw new Error(`no link in: ${mail.text}`);
  return m[1];
}

/** A unique name for this run. */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
