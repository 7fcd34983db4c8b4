/**
 * An error a client should see: it carries the fields of a PostgreSQL ErrorResponse.
 * Policy code throws it; the session encodes and sends it, and the session goes on
 * (unless `severity` is FATAL). See https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
export class SqlError extends Error {
  readonly code: string;
  readonly severity: 'ERROR' | 'FATAL';
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  /** Extra ErrorResponse fields relayed from a backend, by field code letter. */
  readonly fields: Record<string, string>;

  constructor(
    code: string,
    message: string,
    options: {
      severity?: 'ERROR' | 'FATAL';
      detail?: string;
      hint?: string;
      fields?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SqlError';
    this.code = code;
    this.severity = options.severity ?? 'ERROR';
    this.detail = options.detail;
    this.hint = options.hint;
    this.fields = options.fields ?? {};
  }
}

/** SQLSTATE codes the proxy raises itself. https://www.postgresql.org/docs/current/errcodes-appendix.html */
export const SqlState = {
  INVALID_PASSWORD: '28P01',
  INVALID_AUTHORIZATION: '28000',
  INVALID_CATALOG_NAME: '3D000',
  INSUFFICIENT_PRIVILEGE: '42501',
  SYNTAX_ERROR: '42601',
  PROTOCOL_VIOLATION: '08P01',
  CONNECTION_FAILURE: '08006',
  CONNECTION_EXCEPTION: '08000',
  FEATURE_NOT_SUPPORTED: '0A000',
  IN_FAILED_TRANSACTION: '25P02',
  IDLE_IN_TRANSACTION_TIMEOUT: '25P03',
  SERIALIZATION_FAILURE: '40001',
  TRANSACTION_ROLLBACK: '40000',
  DATA_CORRUPTED: 'XX001',
  INTERNAL_ERROR: 'XX000',
  OBJECT_NOT_IN_PREREQUISITE_STATE: '55000',
  QUERY_CANCELED: '57014',
  ADMIN_SHUTDOWN: '57P01',
  IDLE_SESSION_TIMEOUT: '57P05',
  UNDEFINED_OBJECT: '42704',
  INVALID_PARAMETER_VALUE: '22023',
} as const;

/** Stable codes of internal failures, for logs and the admin API. */
export type QoErrorCode =
  | 'CONFIG_INVALID'
  | 'TOKEN_INVALID'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_DIVERGED'
  | 'ROLLBACK_CONFLICT'
  | 'ROLLBACK_UNAVAILABLE'
  | 'NOT_FOUND'
  | 'CATALOG_FAILURE';

/** An internal failure with a stable code, the SQL involved if any, and the cause chained. */
export class QoError extends Error {
  readonly code: QoErrorCode;
  readonly sql: string | undefined;

  constructor(code: QoErrorCode, message: string, options: { cause?: unknown; sql?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QoError';
    this.code = code;
    this.sql = options.sql;
  }
}
