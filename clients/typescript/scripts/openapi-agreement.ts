/**
 * Compiled only by `npm run check:openapi`: each line fails to type-check when src/wire.ts and
 * the types openapi-typescript generated from openapi.json disagree. Responses: what the server
 * documents must be readable as the wire type. Requests: what the SDK sends must be a body the
 * server documents. Routes are found by their shape, whatever the path parameters are named.
 */
import type { paths } from "../generated/openapi.js";
import type * as W from "../src/wire.js";

type Root = "/api/v1/contact-channels";
type ChannelPath = Extract<keyof paths, `${Root}/{${string}}/{${string}}`>;
type SendPath = Extract<keyof paths, `${Root}/{${string}}/{${string}}/send-verification-code`>;
type AttemptPath = Extract<keyof paths, `${Root}/{${string}}/{${string}}/attempt-verification`>;

type Op<P, M extends string> = P extends keyof paths ? NonNullable<paths[P][M & keyof paths[P]]> : never;
type Json<C> = C extends { content: { "application/json": infer B } } ? B : never;
type Res<P, M extends string, S extends number> = Op<P, M> extends { responses: infer R }
  ? S extends keyof R
    ? Json<R[S]>
    : never
  : never;
type Req<P, M extends string> = Op<P, M> extends { requestBody?: infer B } ? Json<NonNullable<B>> : never;

/** A route that is missing or undocumented makes `A` never, which fails too. */
type Agrees<A, B> = [A] extends [never] ? false : [A] extends [B] ? true : false;
type Check<T extends true> = T;

export type Checks = [
  // Responses → wire types.
  Check<Agrees<Res<Root, "post", 201>, W.WireChannel>>,
  Check<Agrees<Res<Root, "get", 200>, W.WireChannelList>>,
  Check<Agrees<Res<ChannelPath, "get", 200>, W.WireChannel>>,
  Check<Agrees<Res<ChannelPath, "patch", 200>, W.WireChannel>>,
  Check<Agrees<Res<ChannelPath, "delete", 200>, W.WireSuccess>>,
  Check<Agrees<Res<SendPath, "post", 200>, W.WireSent>>,
  Check<Agrees<Res<AttemptPath, "post", 200>, W.WireChannel>>,
  Check<Agrees<Res<`${Root}/verify`, "post", 200>, W.WireSuccess>>,
  Check<Agrees<Res<`${Root}/verify/check-code`, "post", 200>, W.WireCheck>>,
  Check<Agrees<Res<ChannelPath, "get", 404>, W.WireError>>,
  // Wire request bodies → what the server accepts.
  Check<Agrees<W.WireCreateBody, Req<Root, "post">>>,
  Check<Agrees<W.WirePatchBody, Req<ChannelPath, "patch">>>,
  Check<Agrees<W.WireSendBody, Req<SendPath, "post">>>,
  Check<Agrees<W.WireCodeBody, Req<AttemptPath, "post">>>,
  Check<Agrees<W.WireCodeBody, Req<`${Root}/verify`, "post">>>,
];
