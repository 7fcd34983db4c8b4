import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import { QoError } from '../errors.ts';
import { identityFromClaims, invalid, readPermissions } from './claims.ts';
import type { Identity, Permission } from './identity.ts';

/** The only algorithm accepted; pinned so that `none`, RS256 and key confusion are refused. */
const ALGORITHM = 'HS256';
const DEFAULT_CACHE_ENTRIES = 10_000;

export interface VerifyOptions {
  /** The current time in milliseconds since the epoch; tests move it. Default: the clock. */
  now?: number;
  /** Seconds of clock difference tolerated on `exp` and `nbf`. Default 0. */
  clockTolerance?: number;
}

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds in `90`, `90s`, `15m`, `1h`, `7d` or `2w`; undefined when the text is none of these. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  const match = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(value);
  if (match === null) return undefined;
  const seconds = Number(match[1]) * (UNITS[match[2] || 's'] ?? 1);
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : undefined;
}

const iso = (seconds: unknown): string =>
  typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : 'an unreadable time';

/**
 * Verifies tokens signed with one secret and remembers the ones that passed. A remembered
 * token skips the signature check but never its expiry. Revocation (by `jti`) is not
 * remembered here: the caller checks it on every use.
 */
export class TokenVerifier {
  private readonly key: Uint8Array;
  private readonly cache = new Map<string, Identity>();

  constructor(
    secret: string,
    private readonly maxEntries = DEFAULT_CACHE_ENTRIES,
  ) {
    if (secret === '') throw new QoError('CONFIG_INVALID', 'the token secret is empty');
    this.key = new TextEncoder().encode(secret);
  }

  get size(): number {
    return this.cache.size;
  }

  clear(): void {
    this.cache.clear();
  }

  async verify(token: string, options: VerifyOptions = {}): Promise<Identity> {
    const now = options.now ?? Date.now();
    const tolerance = options.clockTolerance ?? 0;
    const cached = this.cache.get(token);
    if (cached !== undefined) {
      // The same rule as jose's: expired once `exp <= now - tolerance`, in whole seconds.
      if (cached.exp === undefined || cached.exp > Math.floor(now / 1000) - tolerance)
        return cached;
      this.cache.delete(token);
      throw invalid(`token expired at ${iso(cached.exp)}`);
    }
    const identity = await this.check(token, now, tolerance);
    if (this.cache.size >= this.maxEntries) {
      // Forget the oldest entry; a forgotten token is only verified again, never refused.
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(token, identity);
    return identity;
  }

  private async check(token: string, now: number, tolerance: number): Promise<Identity> {
    if (typeof token !== 'string' || token === '') throw invalid('no token given');
    const parts = token.split('.').length;
    if (parts === 5)
      throw invalid('an encrypted token (JWE) is not accepted; expected a signed JWT');
    if (parts !== 3) throw invalid('not a JWT: expected three base64url parts separated by dots');
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch (error) {
      throw invalid('not a JWT: its header is not base64url-encoded JSON', error);
    }
    if (alg === undefined || alg === 'none') {
      throw invalid(`unsigned token (alg "none") refused; tokens must be signed with ${ALGORITHM}`);
    }
    if (alg !== ALGORITHM) {
      throw invalid(
        `algorithm ${JSON.stringify(alg)} is not accepted; tokens must be signed with ${ALGORITHM}`,
      );
    }
    let payload: Record<string, unknown>;
    try {
      const verified = await jwtVerify(token, this.key, {
        algorithms: [ALGORITHM],
        currentDate: new Date(now),
        clockTolerance: tolerance,
      });
      payload = verified.payload;
    } catch (error) {
      throw invalid(reasonOf(error), error);
    }
    return identityFromClaims(payload);
  }
}

/** A sentence for each way jose refuses a token; anything else (a TypeError too) is a refusal. */
function reasonOf(error: unknown): string {
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return 'signature does not match the configured secret';
  }
  if (error instanceof errors.JWTExpired) return `token expired at ${iso(error.payload.exp)}`;
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf' && error.reason === 'check_failed') {
      return `token not valid before ${iso(error.payload.nbf)}`;
    }
    return `invalid claims: ${error.message}`;
  }
  if (error instanceof errors.JWTInvalid) return `not a JWT: ${error.message}`;
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return `algorithm not accepted; tokens must be signed with ${ALGORITHM}`;
  }
  if (error instanceof errors.JOSEError) return `token refused: ${error.message}`;
  return `token could not be verified: ${error instanceof Error ? error.message : String(error)}`;
}

const verifiers = new Map<string, TokenVerifier>();

/**
 * Verifies a token signed with `secret` (HS256 only), in either claim shape, and returns who
 * holds it. Throws QoError `TOKEN_INVALID` with the reason. Successful verifications are
 * remembered per secret.
 */
export function verifyToken(
  token: string,
  secret: string,
  options: VerifyOptions = {},
): Promise<Identity> {
  let verifier = verifiers.get(secret);
  if (verifier === undefined) {
    // A process normally knows one secret; a few more (tests, a rotation) are kept too.
    if (verifiers.size >= 8) verifiers.clear();
    verifier = new TokenVerifier(secret);
    verifiers.set(secret, verifier);
  }
  return verifier.verify(token, options);
}

export interface MintOptions {
  subject: string;
  clusters?: Record<string, Permission[]>;
  admin?: boolean;
  /** Seconds, or `15m`, `1h`, `7d`; no expiry when absent. */
  expiresIn?: number | string;
  /** Default: a random UUID, so that the token can be revoked. */
  jti?: string;
  /** Milliseconds since the epoch; default the clock. */
  now?: number;
}

/** Signs a token of the current shape `{ sub, clusters, admin, iat, exp?, jti }`. */
export async function mintToken(secret: string, options: MintOptions): Promise<string> {
  if (options.subject === '') throw invalid('a token needs a non-empty subject');
  const clusters = readPermissions(options.clusters ?? {}, 'clusters', false);
  const claims = { sub: options.subject, clusters: { ...clusters }, admin: options.admin === true };
  return sign(secret, claims, options);
}

export interface OriginalClaims {
  user: string;
  /** Cluster name to permission names: `adm`, `read`, `write` (and the current names). */
  data: Record<string, string[]>;
  is_admin: boolean;
}

/** Signs a token of the original's shape, as its `/generate_token` did (plus `iat`, `jti`). */
export async function mintOriginalToken(
  secret: string,
  claims: OriginalClaims,
  options: Pick<MintOptions, 'expiresIn' | 'jti' | 'now'> = {},
): Promise<string> {
  if (claims.user === '') throw invalid('a token needs a non-empty user');
  readPermissions(claims.data, 'data', true);
  return sign(secret, { user: claims.user, data: claims.data, is_admin: claims.is_admin }, options);
}

async function sign(
  secret: string,
  claims: Record<string, unknown>,
  options: Pick<MintOptions, 'expiresIn' | 'jti' | 'now'>,
): Promise<string> {
  if (secret === '') throw new QoError('CONFIG_INVALID', 'the token secret is empty');
  const issuedAt = Math.floor((options.now ?? Date.now()) / 1000);
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setIssuedAt(issuedAt)
    .setJti(options.jti ?? randomUUID());
  if (options.expiresIn !== undefined) {
    const seconds = parseDuration(options.expiresIn);
    if (seconds === undefined) {
      throw invalid(
        `expiry ${JSON.stringify(options.expiresIn)} is not a duration such as 3600, 15m, 1h or 7d`,
      );
    }
    // jose reads a number as an absolute time, so pass the expiry instant.
    jwt.setExpirationTime(issuedAt + seconds);
  }
  return jwt.sign(new TextEncoder().encode(secret));
}
