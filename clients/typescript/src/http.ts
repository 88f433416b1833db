/**
 * The one place that speaks HTTP: builds URLs under `/api/v1`, adds the caller's credentials,
 * and turns every answer into either its JSON body or an error of `errors.ts`.
 */

import { NetworkError, UnexpectedResponseError, knownErrorFrom } from "./errors.js";

/** A `fetch` function (the global one by default; pass another for tests or old runtimes). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Credentials of a request, asked for once per request. */
export type HeadersProvider = () => Promise<Record<string, string>>;

/** Options shared by both clients. */
export interface TransportOptions {
  /** Where the API is, e.g. `https://api.example.com` (a trailing `/api/v1` is accepted). */
  baseUrl: string;
  /** A `fetch` to use instead of `globalThis.fetch`. */
  fetch?: FetchLike;
}

/** Normalises a base URL to the API root, without a trailing slash, ending in `/api/v1`. */
export function apiRoot(baseUrl: string): string {
  if (typeof baseUrl !== "string" || baseUrl.trim() === "") {
    throw new TypeError("contact-channels: baseUrl is required, e.g. https://api.example.com");
  }
  let root = baseUrl.trim().replace(/\/+$/, "");
  if (!/\/api\/v1$/.test(root)) root += "/api/v1";
  return root;
}

/** Parses `retry-after`: whole seconds, or an HTTP date (rounded up to seconds from now). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Sends requests to one API root with one kind of credentials. */
export class Transport {
  readonly root: string;
  readonly #fetch: FetchLike;
  readonly #headers: HeadersProvider;

  constructor(options: TransportOptions, headers: HeadersProvider) {
    this.root = apiRoot(options.baseUrl);
    const f = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (typeof f !== "function") {
      throw new TypeError("contact-channels: no fetch in this runtime; pass options.fetch");
    }
    // Bound so that browsers do not throw "Illegal invocation" on a detached window.fetch.
    this.#fetch = options.fetch ?? f.bind(globalThis);
    this.#headers = headers;
  }

  /** Sends one request and answers its JSON body; rejects with a KnownError or a TransportError. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json", ...(await this.#headers()) };
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const url = this.root + path;
    let response: Response;
    try {
      response = await this.#fetch(url, init);
    } catch (cause) {
      throw new NetworkError(`${method} ${url} failed: ${describe(cause)}`, { cause });
    }
    let text: string;
    try {
      text = await response.text();
    } catch (cause) {
      throw new NetworkError(`${method} ${url}: the answer was cut off: ${describe(cause)}`, { cause });
    }
    const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      throw new UnexpectedResponseError(response.status, text, retryAfter, "the body is not JSON");
    }
    if (!response.ok) {
      if (!isObject(json) || typeof json["code"] !== "string") {
        throw new UnexpectedResponseError(
          response.status,
          text,
          retryAfter,
          "an error without the API's {code, error} body",
        );
      }
      const details = isObject(json["details"]) ? json["details"] : {};
      const fromDetails = details["retry_after_seconds"];
      throw knownErrorFrom({
        code: json["code"],
        status: response.status,
        message: typeof json["error"] === "string" ? json["error"] : json["code"],
        details,
        // The header is the contract; the body's copy serves browsers that cannot read the
        // header of a cross-origin answer the server did not expose.
        retryAfterSeconds: retryAfter ?? (typeof fromDetails === "number" ? fromDetails : null),
      });
    }
    if (!isObject(json)) {
      throw new UnexpectedResponseError(response.status, text, retryAfter, "the body is not a JSON object");
    }
    return json as T;
  }
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}
