/**
 * Who is calling: the bearer token of a request, verified and checked against revocation.
 * Every refusal is 403 with `{"error": "..."}`, as the original answered; no message repeats
 * the token or the header.
 */
import type { Catalog } from '../catalog/types.ts';
import type { Identity } from '../src/auth/identity.ts';
import { verifyToken } from '../src/auth/tokens.ts';
import { QoError } from '../src/errors.ts';
import { forbidden } from './errors.ts';
import type { Access } from './route.ts';

const BEARER = /^Bearer +([^\s]+) *$/i;

export async function authenticate(
  header: string | undefined,
  secret: string,
  catalog: Catalog,
): Promise<Identity> {
  if (header === undefined || header.trim() === '') {
    throw forbidden('missing Authorization header; expected "Authorization: Bearer <token>"');
  }
  const match = BEARER.exec(header);
  if (match === null) {
    throw forbidden('malformed Authorization header; expected "Authorization: Bearer <token>"');
  }
  let identity: Identity;
  try {
    identity = await verifyToken(match[1]!, secret);
  } catch (error) {
    if (error instanceof QoError && error.code === 'TOKEN_INVALID') {
      throw forbidden(`invalid token: ${error.message}`);
    }
    throw error;
  }
  // Tokens without a `jti` (issued elsewhere) cannot be revoked, only expire.
  if (identity.jti !== undefined && (await catalog.isRevoked(identity.jti))) {
    throw forbidden('the token has been revoked');
  }
  return identity;
}

export function authorize(identity: Identity, access: Access): void {
  if (access === 'admin' && !identity.admin) throw forbidden('this route needs an admin token');
}
