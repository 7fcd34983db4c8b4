/** `GET /status`: the original's liveness answer, with the health of each cluster added. */
import { defineRoute } from './route.ts';
import { array, boolean, choice, integer, object, optional, required, string } from './validate.ts';

const backendStatus = object({
  name: required(string()),
  healthy: required(boolean()),
  error: optional(string({ description: 'Why the backend is unhealthy.' })),
});

const clusterStatus = object({
  name: required(string()),
  backends: required(array(backendStatus)),
  sessions: required(integer({ minimum: 0, description: 'Client sessions open on it.' })),
});

export const statusRoutes = [
  defineRoute({
    method: 'GET',
    path: '/status',
    operationId: 'getStatus',
    summary: 'Whether the service runs, and the health of every cluster',
    tag: 'status',
    access: 'token',
    responses: {
      200: {
        description: 'The service runs. `status` is always `ok`, as in the original.',
        schema: object({
          status: required(choice(['ok'])),
          clusters: required(array(clusterStatus)),
        }),
      },
    },
    async handle({ executor }) {
      return { status: 200, body: { status: 'ok', clusters: executor.status() } };
    },
  }),
];
