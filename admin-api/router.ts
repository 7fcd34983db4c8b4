/** Finds the route of a method and path: a route, or why none (404, 405 with what is allowed). */
import { HttpError } from './errors.ts';
import type { Method, Route } from './route.ts';

export type Match =
  | { kind: 'route'; route: Route; params: Record<string, string> }
  | { kind: 'wrong-method'; allow: Method[] }
  | { kind: 'none' };

interface Compiled {
  route: Route;
  segments: string[];
}

const split = (path: string): string[] => path.split('/').slice(1);

export class Router {
  readonly #compiled: Compiled[];

  constructor(routes: readonly Route[]) {
    this.#compiled = routes.map((route) => ({ route, segments: split(route.path) }));
  }

  /** `pathname` as it came, percent-encoded; one trailing slash is ignored. */
  match(method: string, pathname: string): Match {
    const trimmed =
      pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
    let segments: string[];
    try {
      segments = split(trimmed).map((segment) => decodeURIComponent(segment));
    } catch {
      throw new HttpError(400, 'the path is not valid percent-encoding');
    }
    const allow: Method[] = [];
    for (const { route, segments: pattern } of this.#compiled) {
      const params = matchSegments(pattern, segments);
      if (params === undefined) continue;
      if (route.method === method) return { kind: 'route', route, params };
      allow.push(route.method);
    }
    return allow.length === 0 ? { kind: 'none' } : { kind: 'wrong-method', allow };
  }
}

function matchSegments(pattern: string[], segments: string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, part] of pattern.entries()) {
    const segment = segments[index]!;
    if (part.startsWith(':')) {
      if (segment === '') return undefined;
      params[part.slice(1)] = segment;
    } else if (part !== segment) {
      return undefined;
    }
  }
  return params;
}
