/**
 * The OpenAPI document, built from the same route declarations and schemas that check requests.
 * https://spec.openapis.org/oas/v3.1.0
 */
import { errorSchema } from './errors.ts';
import { defineRoute, type Route } from './route.ts';
import { anyValue, type JsonSchema } from './validate.ts';

const ERROR_REF = { $ref: '#/components/schemas/Error' };

/** Failures every route of a given shape can answer, besides those it declares. */
function commonFailures(route: Route): Record<number, string> {
  const failures: Record<number, string> = {
    403: 'No token, an invalid, expired or revoked one, or a missing permission.',
  };
  if (route.params !== undefined || route.query !== undefined || route.body !== undefined) {
    failures[400] = 'Invalid input; the message names the faulty key.';
  }
  if (route.body !== undefined) failures[413] = 'The body is larger than 1 MiB.';
  return failures;
}

function parameters(schema: JsonSchema | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (schema === undefined) return [];
  const properties = (schema['properties'] ?? {}) as Record<string, JsonSchema>;
  const requiredKeys = (schema['required'] ?? []) as string[];
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === 'path' || requiredKeys.includes(name),
      ...(description === undefined ? {} : { description }),
      schema: rest,
    };
  });
}

function operation(route: Route): JsonSchema {
  const responses: Record<string, JsonSchema> = {};
  for (const [status, spec] of Object.entries(route.responses)) {
    const isError = Number(status) >= 400;
    const schema = spec.schema?.json ?? (isError ? ERROR_REF : undefined);
    responses[status] = {
      description: spec.description,
      ...(schema === undefined ? {} : { content: { 'application/json': { schema } } }),
    };
  }
  for (const [status, description] of Object.entries(commonFailures(route))) {
    responses[status] ??= { description, content: { 'application/json': { schema: ERROR_REF } } };
  }
  const params = [
    ...parameters(route.params?.json, 'path'),
    ...parameters(route.query?.json, 'query'),
  ];
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description === undefined ? {} : { description: route.description }),
    tags: [route.tag],
    security: [{ bearer: [] }],
    ...(params.length === 0 ? {} : { parameters: params }),
    ...(route.body === undefined
      ? {}
      : {
          requestBody: {
            required: route.body.required,
            content: { 'application/json': { schema: route.body.schema.json } },
          },
        }),
    responses,
  };
}

/** `/queries/:id` as OpenAPI writes it: `/queries/{id}`. */
export const openApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');

export function openApiDocument(routes: readonly Route[]): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'QueryOrchestrator admin API',
      version: '1',
      description:
        'Tokens, audit entries, rollbacks and status. Every route needs `Authorization: ' +
        'Bearer <jwt>`; most need an admin token. The original service endpoints ' +
        '(`/status`, `/generate_token`, `/execute_query`, `/execute_rollback`) keep their shapes.',
    },
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Error: errorSchema.json },
    },
  };
}

/** Serves the document of `routes`, itself included; built once, on the first request. */
export function openApiRoute(routes: readonly Route[]): Route {
  let document: JsonSchema | undefined;
  return defineRoute({
    method: 'GET',
    path: '/openapi.json',
    operationId: 'getOpenApi',
    summary: 'This document',
    tag: 'status',
    access: 'token',
    responses: { 200: { description: 'An OpenAPI 3.1 document.', schema: anyValue() } },
    async handle() {
      document ??= openApiDocument(routes);
      return { status: 200, body: document };
    },
  });
}
