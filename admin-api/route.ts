/** What a route of the admin API declares: its schemas (checked and documented) and handler. */
import type { Catalog } from '../catalog/types.ts';
import type { Identity } from '../src/auth/identity.ts';
import type { ClusterExecutor } from '../src/cluster/executor.ts';
import type { Logger } from '../src/log.ts';
import type { Schema } from './validate.ts';

export type Method = 'GET' | 'POST' | 'DELETE';

/**
 * Who may call a route before its handler looks closer: `admin` needs a global admin token,
 * `token` any valid token (the handler, or the executor, then checks per-cluster permissions).
 */
export type Access = 'admin' | 'token';

export interface Services {
  secret: string;
  catalog: Catalog;
  executor: ClusterExecutor;
  logger: Logger;
}

export interface RequestContext<P, Q, B> extends Services {
  identity: Identity;
  params: P;
  query: Q;
  body: B;
}

export interface Reply {
  status: number;
  body: unknown;
}

export interface ResponseSpec {
  description: string;
  schema?: Schema<unknown>;
}

export interface Route<P = unknown, Q = unknown, B = unknown> {
  method: Method;
  /** Segments starting with `:` are parameters: `/queries/:id`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  /** An object schema over the path parameters, which arrive as strings. */
  params?: Schema<P>;
  /** An object schema over the query parameters, which arrive as strings. */
  query?: Schema<Q>;
  /** The JSON body; when not `required`, an empty body reads as `{}`. */
  body?: { schema: Schema<B>; required: boolean };
  /** Success and route-specific failures; the common failures are added to the document. */
  responses: Record<number, ResponseSpec>;
  handle(context: RequestContext<P, Q, B>): Promise<Reply>;
}

/** Checks a route's handler against its own schemas, then forgets their types for the list. */
export function defineRoute<P, Q, B>(route: Route<P, Q, B>): Route {
  return route as Route;
}
