/**
 * The admin API on node:http: route, authenticate, check input against the route's schemas,
 * run the handler, answer JSON. One error body everywhere: `{"error": "...", ...}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Catalog } from '../catalog/types.ts';
import type { ClusterExecutor } from '../src/cluster/executor.ts';
import { QoError } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { authenticate, authorize } from './auth.ts';
import { clusterRoutes } from './clusters.ts';
import { HttpError, toHttpError } from './errors.ts';
import { parseJson, readBody, sendJson } from './http.ts';
import { openApiRoute } from './openapi.ts';
import { originalRoutes } from './original.ts';
import { queryRoutes } from './queries.ts';
import { rollbackRoutes } from './rollbacks.ts';
import type { Route, Services } from './route.ts';
import { Router } from './router.ts';
import { statusRoutes } from './status.ts';
import { tokenRoutes } from './tokens.ts';
import { type Schema, ValidationError } from './validate.ts';

export interface AdminApiOptions {
  host: string;
  /** 0 picks a free port; the one chosen is in the result. */
  port: number;
  /** Signs and verifies tokens. */
  secret: string;
  catalog: Catalog;
  executor: ClusterExecutor;
  logger: Logger;
}

export interface AdminApi {
  host: string;
  port: number;
  /** Stops accepting connections and resolves once the open ones are done. */
  close(): Promise<void>;
}

/** Every route, the OpenAPI document's own included. */
export function adminRoutes(): Route[] {
  const routes = [
    ...statusRoutes,
    ...tokenRoutes,
    ...queryRoutes,
    ...rollbackRoutes,
    ...clusterRoutes,
    ...originalRoutes,
  ];
  routes.push(openApiRoute(routes));
  return routes;
}

export async function startAdminApi(options: AdminApiOptions): Promise<AdminApi> {
  const { host, port, ...services } = options;
  if (services.secret === '') throw new QoError('CONFIG_INVALID', 'the token secret is empty');
  const router = new Router(adminRoutes());
  const server = createServer((request, response) => {
    serve(request, response, router, services).catch((error: unknown) => {
      // Only a failure to answer gets here (every handler failure is answered inside).
      services.logger.error('admin.internal_error', { error: String(error) });
      response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    host: address.address,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeIdleConnections();
      }),
  };
}

async function serve(
  request: IncomingMessage,
  response: ServerResponse,
  router: Router,
  services: Services,
): Promise<void> {
  const started = performance.now();
  const method = request.method ?? 'GET';
  // Split by hand: the target is a path and a query, and nothing in it may name a host.
  const target = request.url ?? '/';
  const mark = target.indexOf('?');
  const url = {
    pathname: mark === -1 ? target : target.slice(0, mark),
    searchParams: new URLSearchParams(mark === -1 ? '' : target.slice(mark + 1)),
  };
  let subject: string | undefined;
  let status: number;
  try {
    const match = router.match(method, url.pathname);
    if (match.kind === 'none') throw new HttpError(404, `no route ${method} ${url.pathname}`);
    if (match.kind === 'wrong-method') {
      const allow = match.allow.join(', ');
      throw new HttpError(405, `method ${method} is not allowed on ${url.pathname}; use ${allow}`, {
        headers: { allow },
      });
    }
    const { route } = match;
    const identity = await authenticate(
      request.headers.authorization,
      services.secret,
      services.catalog,
    );
    subject = identity.subject;
    authorize(identity, route.access);
    const params = check(route.params, match.params, 'path');
    const query = check(route.query, Object.fromEntries(url.searchParams), 'query');
    const body = route.body === undefined ? undefined : await readJson(request, route.body);
    const reply = await route.handle({ ...services, identity, params, query, body });
    status = reply.status;
    sendJson(response, status, reply.body);
  } catch (error) {
    const failure = toHttpError(error);
    status = failure.status;
    if (status >= 500) {
      // A handler may already have wrapped the failure; what went wrong is its cause.
      const cause = error instanceof HttpError && error.cause !== undefined ? error.cause : error;
      services.logger.error('admin.internal_error', {
        method,
        path: url.pathname,
        error: cause instanceof Error ? (cause.stack ?? cause.message) : String(cause),
      });
    }
    if (response.headersSent) response.destroy();
    else sendJson(response, status, failure.body, failure.headers);
  }
  services.logger.info('admin.request', {
    method,
    path: url.pathname,
    status,
    subject,
    ms: Math.round((performance.now() - started) * 10) / 10,
  });
}

type Scope = 'body' | 'query' | 'path';

function check<T>(schema: Schema<T> | undefined, value: unknown, scope: Scope): T | undefined {
  if (schema === undefined) return undefined;
  try {
    return schema.parse(value, '');
  } catch (error) {
    if (error instanceof ValidationError) throw invalidInput(error, scope);
    throw error;
  }
}

/** A sentence that names the faulty key: `missing key "user"`, `"data.db1" must be ...`. */
function invalidInput(error: ValidationError, scope: Scope): HttpError {
  if (scope === 'body') {
    return new HttpError(
      400,
      error.path === '' ? `the request body ${error.problem}` : error.message,
    );
  }
  const what = scope === 'query' ? 'query parameter' : 'path parameter';
  return new HttpError(
    400,
    error.kind === 'missing'
      ? `missing ${what} "${error.path}"`
      : `${what} "${error.path}" ${error.problem}`,
  );
}

async function readJson(
  request: IncomingMessage,
  spec: { schema: Schema<unknown>; required: boolean },
): Promise<unknown> {
  const value = parseJson(await readBody(request));
  if (value === undefined) {
    if (spec.required) throw new HttpError(400, 'no JSON body');
    return check(spec.schema, {}, 'body');
  }
  return check(spec.schema, value, 'body');
}
