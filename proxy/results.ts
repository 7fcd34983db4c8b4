import type { SqlError } from '../src/errors.ts';
import type { Consumer } from './backend-connection.ts';
import {
  backendError,
  decodeCommandComplete,
  decodeDataRow,
  decodeParameterDescription,
  decodeRowDescription,
  type FieldDescription,
} from './backend-decode.ts';
import { BackendCode, type TransactionStatus } from './codes.ts';
import type { Frame } from './framing.ts';

/** What one statement (or one Execute) returned. */
export interface StatementResult {
  fields: FieldDescription[] | null;
  rows: (Buffer | null)[][];
  tag: string | null;
  paramTypes: number[] | null;
  /** PortalSuspended ended it: the row limit of Execute was reached. */
  suspended: boolean;
}

/** Everything a request returned up to its ReadyForQuery. */
export interface Collected {
  results: StatementResult[];
  error: SqlError | null;
  /** NoticeResponse and ParameterStatus messages, to relay to the client. */
  asides: Frame[];
  status: TransactionStatus;
}

export function emptyResult(): StatementResult {
  return { fields: null, rows: [], tag: null, paramTypes: null, suspended: false };
}

/**
 * A consumer that decodes a reply up to ReadyForQuery into results. Each CommandComplete,
 * EmptyQueryResponse or PortalSuspended closes a result; Describe's answers open one.
 */
export function collect(into: Collected, label?: string): Consumer {
  let current: StatementResult | undefined;
  const open = (): StatementResult => {
    if (current === undefined) {
      current = emptyResult();
      into.results.push(current);
    }
    return current;
  };
  return (frame) => {
    switch (frame.code) {
      case BackendCode.RowDescription:
        open().fields = decodeRowDescription(frame.body);
        break;
      case BackendCode.NoData:
        open();
        break;
      case BackendCode.ParameterDescription:
        open().paramTypes = decodeParameterDescription(frame.body);
        break;
      case BackendCode.DataRow:
        open().rows.push(decodeDataRow(frame.body));
        break;
      case BackendCode.CommandComplete:
        open().tag = decodeCommandComplete(frame.body);
        current = undefined;
        break;
      case BackendCode.EmptyQueryResponse:
        open();
        current = undefined;
        break;
      case BackendCode.PortalSuspended:
        open().suspended = true;
        current = undefined;
        break;
      case BackendCode.ErrorResponse:
        into.error ??= backendError(frame.body, label);
        break;
      case BackendCode.NoticeResponse:
      case BackendCode.ParameterStatus:
      case BackendCode.NotificationResponse:
        into.asides.push(frame);
        break;
      case BackendCode.ReadyForQuery:
        into.status = String.fromCharCode(frame.body[0] as number) as TransactionStatus;
        return true;
    }
    return false;
  };
}

export function collected(): Collected {
  return { results: [], error: null, asides: [], status: 'I' };
}
