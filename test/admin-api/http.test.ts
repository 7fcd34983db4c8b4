import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { openApiPath } from '../../admin-api/openapi.ts';
import { adminRoutes } from '../../admin-api/server.ts';
import { CRASHING_CLUSTER, type Fixture, startFixture } from './fixture.ts';

let fixture: Fixture;

before(async () => {
  fixture = await startFixture();
});
after(async () => {
  await fixture.stop();
});

/**
 * Sends a body with node:http, optionally chunked, and resolves with the status and body as
 * soon as the answer arrives, whether or not the server read everything.
 */
function send(
  path: string,
  chunks: Buffer[],
  headers: Record<string, string | number>,
): Promise<{ status: number; body: Record<string, unknown>; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: fixture.api.host,
        port: fixture.api.port,
        path,
        method: 'POST',
        headers: { authorization: `Bearer ${fixture.adminToken}`, ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text) as Record<string, unknown>,
            connection: res.headers.connection,
          }),
        );
      },
    );
    // The server may close the connection while the rest of an oversized body is in flight.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    const writeNext = (index: number): void => {
      if (index === chunks.length) {
        req.end();
        return;
      }
      if (req.destroyed) return;
      req.write(chunks[index], () => writeNext(index + 1));
    };
    writeNext(0);
  });
}

describe('HTTP behaviour', () => {
  test('an unknown route is 404 with a JSON error', async () => {
    const response = await fixture.request('GET', '/nowhere');
    assert.deepEqual([response.status, response.body], [404, { error: 'no route GET /nowhere' }]);
    assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
    const deeper = await fixture.request('GET', '/queries/1/rollback/now');
    assert.equal(deeper.status, 404);
  });

  test('a known path with the wrong method is 405 and says which methods it takes', async () => {
    const response = await fixture.request('PUT', '/tokens');
    assert.equal(response.status, 405);
    assert.equal(response.body['error'], 'method PUT is not allowed on /tokens; use POST, GET');
    assert.equal(response.headers.get('allow'), 'POST, GET');
    const rollback = await fixture.request('GET', '/queries/1/rollback');
    assert.deepEqual([rollback.status, rollback.headers.get('allow')], [405, 'POST']);
  });

  test('odd request targets are answered, and the server keeps serving', async () => {
    for (const target of ['http://x:abc/status', '//status', '/%zz', '*']) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(fixture.api.port, fixture.api.host, () => {
          socket.end(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        });
        let text = '';
        socket.on('data', (chunk) => {
          text += chunk.toString('utf8');
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 (400|404) /, target);
    }
    assert.equal((await fixture.request('GET', '/status')).status, 200);
  });

  test('one trailing slash is ignored', async () => {
    assert.equal((await fixture.request('GET', '/status/')).status, 200);
  });

  test('invalid JSON is 400 naming the problem', async () => {
    const response = await fixture.request('POST', '/generate_token', { raw: '{"user": "a",}' });
    assert.equal(response.status, 400);
    assert.match(String(response.body['error']), /^invalid JSON body: .*(position|JSON)/);
  });

  test('a JSON body that is not an object is 400', async () => {
    const response = await fixture.request('POST', '/execute_query', { raw: '[1, 2]' });
    assert.deepEqual(
      [response.status, response.body],
      [400, { error: 'the request body must be an object' }],
    );
  });

  test('a body declared larger than 1 MiB is refused with 413 before it is read', async () => {
    const body = Buffer.alloc(1024 * 1024 + 1, 0x20);
    const response = await send('/generate_token', [body], {
      'content-type': 'application/json',
      'content-length': body.length,
    });
    assert.equal(response.status, 413);
    assert.equal(response.body['error'], 'the request body is larger than 1 MiB (1048576 bytes)');
    assert.equal(response.connection, 'close');
  });

  test('a chunked body that grows past 1 MiB is refused with 413', async () => {
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    const response = await send('/generate_token', [chunk, chunk, chunk, chunk, chunk, chunk], {
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
    });
    assert.equal(response.status, 413);
    assert.equal(response.connection, 'close');
  });

  test('a body of exactly 1 MiB is read', async () => {
    const json = JSON.stringify({ user: 'big', data: {}, is_admin: false });
    const body = Buffer.from(json.padEnd(1024 * 1024, ' '));
    const response = await send('/generate_token', [body], {
      'content-type': 'application/json',
      'content-length': body.length,
    });
    assert.equal(response.status, 200);
  });

  test('an unexpected failure is 500 without its details, which go to the log', async () => {
    const response = await fixture.request('POST', '/execute_query', {
      body: { query: 'SELECT 1', group: CRASHING_CLUSTER },
    });
    assert.deepEqual([response.status, response.body], [500, { error: 'internal error' }]);
    assert.ok(fixture.logs.some((line) => line.includes('admin.internal_error')));
    assert.ok(fixture.logs.some((line) => line.includes('internal detail')));
  });

  test('every request is logged with method, path, status and subject', async () => {
    await fixture.request('GET', '/status');
    const line = fixture.logs.findLast((l) => l.includes('admin.request'));
    assert.match(String(line), /method=GET path=\/status status=200 subject=root ms=/);
  });
});

describe('GET /openapi.json', () => {
  test('lists every route with its method, parameters, body and responses', async () => {
    const response = await fixture.request('GET', '/openapi.json');
    assert.equal(response.status, 200);
    const document = response.body as {
      openapi: string;
      paths: Record<string, Record<string, Record<string, unknown>>>;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
    };
    assert.equal(document.openapi, '3.1.0');
    assert.ok(document.components.schemas['Error']);
    assert.deepEqual(document.components.securitySchemes['bearer'], {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    const routes = adminRoutes();
    const listed = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    assert.deepEqual(
      listed.sort(),
      routes.map((route) => `${route.method} ${openApiPath(route.path)}`).sort(),
    );
    for (const path of [
      '/status',
      '/tokens',
      '/tokens/{jti}',
      '/queries',
      '/queries/{id}',
      '/queries/{id}/rollback',
      '/generate_token',
      '/execute_query',
      '/execute_rollback',
      '/openapi.json',
    ]) {
      assert.ok(document.paths[path], path);
    }
    for (const route of routes) {
      const operation = document.paths[openApiPath(route.path)]![route.method.toLowerCase()]!;
      assert.equal(operation['operationId'], route.operationId);
      const responses = operation['responses'] as Record<string, unknown>;
      assert.ok(responses['403'], `${route.operationId} documents 403`);
      assert.ok(Object.keys(responses).some((status) => status.startsWith('2')));
      if (route.body !== undefined) {
        assert.ok(operation['requestBody'], `${route.operationId} documents its body`);
        assert.ok(responses['413'] && responses['400']);
      }
    }
  });

  test('documents parameters and bodies from the same schemas that check requests', async () => {
    const { body } = await fixture.request('GET', '/openapi.json');
    const paths = body['paths'] as Record<string, Record<string, Record<string, unknown>>>;
    const list = paths['/queries']!['get']!;
    const limit = (list['parameters'] as Record<string, unknown>[]).find(
      (p) => p['name'] === 'limit',
    );
    assert.deepEqual(limit, {
      name: 'limit',
      in: 'query',
      required: false,
      description: 'Default 100.',
      schema: { type: 'integer', minimum: 1, maximum: 1000 },
    });
    const generate = paths['/generate_token']!['post']!;
    const schema = (generate['requestBody'] as { content: Record<string, { schema: unknown }> })
      .content['application/json']!.schema as Record<string, unknown>;
    assert.deepEqual(schema['required'], ['user', 'data', 'is_admin']);
    const rollback = paths['/queries/{id}/rollback']!['post']!;
    assert.deepEqual((rollback['parameters'] as Record<string, unknown>[])[0]?.['in'], 'path');
    assert.ok((rollback['responses'] as Record<string, unknown>)['409']);
  });

  test('responses of the routes match the schemas the document declares', async () => {
    const routes = new Map(adminRoutes().map((route) => [`${route.method} ${route.path}`, route]));
    const executed = await fixture.request('POST', '/execute_query', {
      body: { query: 'INSERT 9', group: 'prod' },
    });
    const id = Number(executed.body['query_id']);
    const calls: [string, string, string, unknown?][] = [
      ['GET', '/status', '/status'],
      ['GET', '/tokens', '/tokens'],
      [
        'POST',
        '/tokens',
        '/tokens',
        { subject: 's', clusters: { prod: ['read'] }, expires_in: 60 },
      ],
      ['GET', '/queries', '/queries'],
      ['GET', '/queries/:id', `/queries/${id}`],
      ['POST', '/queries/:id/rollback', `/queries/${id}/rollback`, { dry_run: true }],
      ['POST', '/execute_rollback', '/execute_rollback', { query_id: id }],
      ['POST', '/generate_token', '/generate_token', { user: 'u', data: {}, is_admin: false }],
    ];
    for (const [method, pattern, path, body] of calls) {
      const response = await fixture.request(method, path, body === undefined ? {} : { body });
      const route = routes.get(`${method} ${pattern}`)!;
      const schema = route.responses[response.status]?.schema;
      assert.ok(schema, `${method} ${path} answered ${response.status}`);
      assert.doesNotThrow(() => schema.parse(response.body, ''), `${method} ${path}`);
    }
  });
});
