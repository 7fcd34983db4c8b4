import { QoError } from '../errors.ts';
import { type Identity, PERMISSIONS, type Permission } from './identity.ts';

/**
 * What each permission name of the original's tokens grants. The original knew `read`, `write`
 * and `adm`, and its `write` let a token make every kind of change (CREATE and DROP included)
 * and run rollbacks, so it maps to the three permissions those are split into here.
 */
const ORIGINAL_NAMES: Readonly<Record<string, readonly Permission[]>> = {
  adm: ['admin'],
  read: ['read'],
  write: ['write', 'ddl', 'rollback'],
};

export function invalid(reason: string, cause?: unknown): QoError {
  return new QoError('TOKEN_INVALID', reason, cause === undefined ? {} : { cause });
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads per-cluster permissions. An unknown permission name refuses the whole token rather
 * than being dropped: a misspelt `wirte` then fails loudly where it was issued, instead of
 * later as a puzzling "permission denied".
 */
export function readPermissions(
  value: unknown,
  claim: string,
  original: boolean,
): Record<string, Permission[]> {
  if (!isObject(value))
    throw invalid(`claim "${claim}" must be an object of cluster to permissions`);
  // No prototype, so that a cluster named like an Object method (`constructor`) grants nothing.
  const clusters: Record<string, Permission[]> = Object.create(null);
  for (const [cluster, names] of Object.entries(value)) {
    if (cluster === '') throw invalid(`claim "${claim}" names an empty cluster`);
    if (!Array.isArray(names) || names.some((name) => typeof name !== 'string')) {
      throw invalid(`claim "${claim}.${cluster}" must be a list of permission names`);
    }
    const granted = new Set<Permission>();
    for (const name of names as string[]) {
      const permissions = permissionsOf(name, original);
      if (permissions === undefined) {
        const known = new Set([...PERMISSIONS, ...(original ? Object.keys(ORIGINAL_NAMES) : [])]);
        throw invalid(
          `claim "${claim}.${cluster}" holds unknown permission "${name}" ` +
            `(known: ${[...known].join(', ')})`,
        );
      }
      for (const permission of permissions) granted.add(permission);
    }
    clusters[cluster] = PERMISSIONS.filter((permission) => granted.has(permission));
  }
  return clusters;
}

function permissionsOf(name: string, original: boolean): readonly Permission[] | undefined {
  if (original && Object.hasOwn(ORIGINAL_NAMES, name)) return ORIGINAL_NAMES[name];
  return PERMISSIONS.find((permission) => permission === name) === undefined
    ? undefined
    : [name as Permission];
}

/**
 * The identity a verified claim set describes. Two shapes are accepted: the current one
 * `{ sub, clusters, admin?, exp?, jti? }` and the original's `{ user, data, is_admin }`.
 * A claim set with keys of both is refused, since it is unclear which one to believe.
 */
export function identityFromClaims(payload: Record<string, unknown>): Identity {
  const hasOriginal = 'user' in payload || 'data' in payload || 'is_admin' in payload;
  const hasCurrent = 'sub' in payload || 'clusters' in payload || 'admin' in payload;
  if (hasOriginal && hasCurrent) {
    throw invalid(
      'claims mix the current shape (sub, clusters, admin) and the original one ' +
        '(user, data, is_admin)',
    );
  }
  const [subjectClaim, clustersClaim, adminClaim] = hasOriginal
    ? ['user', 'data', 'is_admin']
    : ['sub', 'clusters', 'admin'];
  const subject = payload[subjectClaim];
  if (typeof subject !== 'string' || subject === '') {
    throw invalid(`claim "${subjectClaim}" must be a non-empty string`);
  }
  const admin = payload[adminClaim] ?? false;
  if (typeof admin !== 'boolean') throw invalid(`claim "${adminClaim}" must be true or false`);
  const clusters =
    payload[clustersClaim] === undefined
      ? Object.create(null)
      : readPermissions(payload[clustersClaim], clustersClaim, hasOriginal);
  const identity: Identity = { subject, clusters, admin };
  if (payload.jti !== undefined) {
    if (typeof payload.jti !== 'string') throw invalid('claim "jti" must be a string');
    identity.jti = payload.jti;
  }
  if (typeof payload.exp === 'number') identity.exp = payload.exp;
  return freeze(identity);
}

/** Identities are shared by every user of a cached token, so none may change one. */
function freeze(identity: Identity): Identity {
  for (const permissions of Object.values(identity.clusters)) Object.freeze(permissions);
  Object.freeze(identity.clusters);
  return Object.freeze(identity);
}
