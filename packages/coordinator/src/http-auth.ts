import { timingSafeEqual } from 'node:crypto';

/** The request target as a URL, or undefined when it does not parse (a peer's bytes, so no throw). */
export function parseTarget(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * Whether the request carries one of `tokens`: `Authorization: Bearer <token>`, or, when
 * `allowQuery`, `?token=` (browsers cannot set headers on a WebSocket or an EventSource).
 */
export function isAuthorized(header: string | undefined, target: URL, tokens: readonly Buffer[], allowQuery = true): boolean {
  const fromHeader = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
  const offered = fromHeader ?? (allowQuery ? (target.searchParams.get('token') ?? undefined) : undefined);
  if (offered === undefined) return false;
  const candidate = Buffer.from(offered);
  // Constant-time comparison, so response timing does not reveal how much of a token matched.
  return tokens.some((token) => token.length === candidate.length && timingSafeEqual(token, candidate));
}
