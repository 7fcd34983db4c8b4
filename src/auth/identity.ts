/** What a token may do on a cluster. `admin` implies every other permission. */
export type Permission = 'read' | 'write' | 'ddl' | 'rollback' | 'admin';

export const PERMISSIONS: readonly Permission[] = ['read', 'write', 'ddl', 'rollback', 'admin'];

/** The verified holder of a token, whatever claim shape the token used. */
export interface Identity {
  subject: string;
  /** Per-cluster permissions; the key `*` applies to every cluster. */
  clusters: Record<string, Permission[]>;
  /** Global admin: every permission on every cluster and the admin API. */
  admin: boolean;
  jti?: string;
  /** Expiry, seconds since the epoch. */
  exp?: number;
}

/** Permissions granted on a cluster, own keys only (a cluster named `constructor` grants nothing). */
function granted(identity: Identity, cluster: string): Permission[] {
  const own = (key: string) =>
    Object.hasOwn(identity.clusters, key) ? (identity.clusters[key] ?? []) : [];
  return [...own(cluster), ...own('*')];
}

export function can(identity: Identity, cluster: string, permission: Permission): boolean {
  if (identity.admin) return true;
  const permissions = granted(identity, cluster);
  return permissions.includes('admin') || permissions.includes(permission);
}

/** Whether the identity holds any permission at all on the cluster (needed to connect). */
export function canConnect(identity: Identity, cluster: string): boolean {
  return identity.admin || granted(identity, cluster).length > 0;
}
