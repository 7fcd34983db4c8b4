/**
 * The one error body of the admin API, `{"error": "...", ...}`, as the original sent it, and
 * the status each internal failure maps to.
 */
import { QoError, type QoErrorCode, SqlError, SqlState } from '../src/errors.ts';
import { object, optional, required, type Schema, string } from './validate.ts';

/** A failure the API answers with `status` and `{ error: message, ...extra }`. */
export class HttpError extends Error {
  readonly status: number;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: {
      extra?: Record<string, unknown>;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }

  get body(): Record<string, unknown> {
    return { error: this.message, ...this.extra };
  }
}

export const forbidden = (message: string): HttpError => new HttpError(403, message);
export const notFound = (message: string): HttpError => new HttpError(404, message);
export const badRequest = (message: string): HttpError => new HttpError(400, message);
export const conflict = (message: string, extra?: Record<string, unknown>): HttpError =>
  new HttpError(409, message, extra === undefined ? {} : { extra });

export const errorSchema: Schema<unknown> = object(
  {
    error: required(string({ description: 'What went wrong, in a sentence.' })),
    message: optional(string({ description: 'The database error of a failed query.' })),
    code: optional(
      string({ description: 'SQLSTATE of a failed query, or the stable internal error code.' }),
    ),
  },
  { description: 'Every error has this shape; some carry more fields.' },
);

const QO_STATUS: Record<QoErrorCode, number> = {
  CONFIG_INVALID: 400,
  TOKEN_INVALID: 403,
  NOT_FOUND: 404,
  ROLLBACK_CONFLICT: 409,
  ROLLBACK_UNAVAILABLE: 409,
  BACKEND_UNAVAILABLE: 503,
  BACKEND_DIVERGED: 500,
  CATALOG_FAILURE: 500,
};

const AUTH_STATES: ReadonlySet<string> = new Set([
  SqlState.INSUFFICIENT_PRIVILEGE,
  SqlState.INVALID_AUTHORIZATION,
  SqlState.INVALID_PASSWORD,
]);

/**
 * The HTTP answer to a failure of a handler. `failed` heads the body of a failed SQL execution
 * (`query failed`), whose database message goes in `message` as the original did. Anything
 * unexpected becomes a bare 500: its message may hold internals, so only the log sees it.
 */
export function toHttpError(error: unknown, failed = 'query failed'): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof SqlError) {
    if (AUTH_STATES.has(error.code)) {
      return new HttpError(403, error.message, { extra: { code: error.code }, cause: error });
    }
    const extra: Record<string, unknown> = { message: error.message, code: error.code };
    if (error.detail !== undefined) extra['detail'] = error.detail;
    if (error.hint !== undefined) extra['hint'] = error.hint;
    return new HttpError(400, failed, { extra, cause: error });
  }
  if (error instanceof QoError) {
    return new HttpError(QO_STATUS[error.code], error.message, {
      extra: { code: error.code },
      cause: error,
    });
  }
  return new HttpError(500, 'internal error', { cause: error });
}
