/** Tokens: issue (recorded in the catalog so they can be revoked), list, revoke. */
import { randomUUID } from 'node:crypto';
import type { Catalog } from '../catalog/types.ts';
import { PERMISSIONS } from '../src/auth/identity.ts';
import { mintToken, parseDuration } from '../src/auth/tokens.ts';
import { QoError } from '../src/errors.ts';
import { badRequest } from './errors.ts';
import { defineRoute } from './route.ts';
import {
  anyValue,
  array,
  boolean,
  choice,
  custom,
  nullable,
  object,
  optional,
  record,
  required,
  string,
} from './validate.ts';

const permissions = record(
  array(choice(PERMISSIONS)),
  'Cluster name (or `*` for every cluster) to the permissions granted on it.',
);

/** The longest lifetime a token is issued with: ten years of 365 days, in seconds. */
const MAX_EXPIRES_IN = 10 * 365 * 86_400;

const expiresIn = custom(
  {
    oneOf: [
      { type: 'integer', minimum: 1, maximum: MAX_EXPIRES_IN },
      { type: 'string', pattern: '^\\s*\\d+\\s*[smhdw]?\\s*$' },
    ],
    description:
      'Seconds, or a duration such as `15m`, `1h`, `7d`; at most ten years. No expiry when absent.',
  },
  'a number of seconds or a duration such as "15m", "1h" or "7d", at most ten years',
  (value) => {
    const seconds =
      typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined;
    return seconds !== undefined && seconds <= MAX_EXPIRES_IN ? seconds : undefined;
  },
);

const timestamp = string({ format: 'date-time' });

const issued = object({
  token: required(string({ description: 'The signed JWT. It is shown once and not stored.' })),
  jti: required(string({ description: 'The id that revokes the token.' })),
  expires_at: required(nullable(timestamp)),
});

const tokenRecord = object({
  jti: required(string()),
  subject: required(string()),
  claims: required(anyValue('The permissions the token carries.')),
  issued_at: required(timestamp),
  expires_at: required(nullable(timestamp)),
  revoked_at: required(nullable(timestamp)),
});

export interface Issued {
  token: string;
  jti: string;
  expiresAt: Date | null;
}

/**
 * Signs a token with a fresh `jti` and records it, so that it can be listed and revoked. A claim
 * the token functions refuse (an empty cluster name, an unknown permission) is bad input here.
 */
export async function issueToken(
  catalog: Catalog,
  subject: string,
  claims: unknown,
  expiresIn: number | undefined,
  sign: (options: { jti: string; now: number; expiresIn?: number }) => Promise<string>,
): Promise<Issued> {
  const jti = randomUUID();
  // Whole seconds, as `iat` and `exp` are, so the recorded times match the token's.
  const issuedAt = Math.floor(Date.now() / 1000);
  let token: string;
  try {
    token = await sign(
      expiresIn === undefined
        ? { jti, now: issuedAt * 1000 }
        : { jti, now: issuedAt * 1000, expiresIn },
    );
  } catch (error) {
    if (error instanceof QoError && error.code === 'TOKEN_INVALID') throw badRequest(error.message);
    throw error;
  }
  const expiresAt = expiresIn === undefined ? null : new Date((issuedAt + expiresIn) * 1000);
  await catalog.recordToken({
    jti,
    subject,
    claims,
    issuedAt: new Date(issuedAt * 1000),
    expiresAt,
  });
  return { token, jti, expiresAt };
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

export const tokenRoutes = [
  defineRoute({
    method: 'POST',
    path: '/tokens',
    operationId: 'issueToken',
    summary: 'Issue a token',
    tag: 'tokens',
    access: 'admin',
    body: {
      required: true,
      schema: object(
        {
          subject: required(string({ minLength: 1, description: 'Who holds the token.' })),
          clusters: required(permissions),
          admin: optional(boolean('Global admin: every permission and the admin API.')),
          expires_in: optional(expiresIn),
        },
        { strict: true },
      ),
    },
    responses: { 201: { description: 'The token, issued and recorded.', schema: issued } },
    async handle({ body, catalog, secret }) {
      const clusters = body.clusters;
      const admin = body.admin === true;
      const result = await issueToken(
        catalog,
        body.subject,
        { clusters, admin },
        body.expires_in,
        (options) => mintToken(secret, { subject: body.subject, clusters, admin, ...options }),
      );
      return {
        status: 201,
        body: { token: result.token, jti: result.jti, expires_at: iso(result.expiresAt) },
      };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/tokens',
    operationId: 'listTokens',
    summary: 'List the issued tokens, newest first',
    description: 'Tokens themselves are never stored; the list shows what each one grants.',
    tag: 'tokens',
    access: 'admin',
    responses: {
      200: {
        description: 'Every recorded token.',
        schema: object({ tokens: required(array(tokenRecord)) }),
      },
    },
    async handle({ catalog }) {
      const tokens = await catalog.listTokens();
      return {
        status: 200,
        body: {
          tokens: tokens.map((token) => ({
            jti: token.jti,
            subject: token.subject,
            claims: token.claims,
            issued_at: token.issuedAt.toISOString(),
            expires_at: iso(token.expiresAt),
            revoked_at: iso(token.revokedAt),
          })),
        },
      };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/tokens/:jti',
    operationId: 'revokeToken',
    summary: 'Revoke a token',
    description:
      'Any `jti` can be revoked, also of a token not issued here (printed at start, minted by ' +
      'the CLI): the revocation is recorded and the token refused from then on. Revoking twice ' +
      'keeps the first revocation time.',
    tag: 'tokens',
    access: 'admin',
    params: object({ jti: required(string({ minLength: 1 })) }),
    responses: {
      200: {
        description: 'The token is revoked; it is refused from now on.',
        schema: object({
          jti: required(string()),
          revoked: required(boolean()),
          known: required(boolean('Whether the token was issued here (POST /tokens).')),
        }),
      },
    },
    async handle({ params, catalog }) {
      const known = await catalog.revokeToken(params.jti);
      return { status: 200, body: { jti: params.jti, revoked: true, known } };
    },
  }),
];
