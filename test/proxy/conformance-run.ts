/**
 * Runs scripted message sequences against a server (PostgreSQL itself, or the proxy) and
 * reduces the replies to what must be equal between the two: message types, command tags,
 * SQLSTATEs, transaction status, column names and types, and row values unless asked not to.
 */
import { createHash } from 'node:crypto';
import {
  decodeCommandComplete,
  decodeDataRow,
  decodeFields,
  decodeParameterDescription,
  decodeParameterStatus,
  decodeRowDescription,
} from '../../proxy/backend-decode.ts';
import { BackendCode } from '../../proxy/codes.ts';
import type { Frame } from '../../proxy/framing.ts';
import { MessageWriter } from '../../proxy/writer.ts';
import { sendCancel, WireClient } from './wire-client.ts';

export type Until =
  /** Up to the n-th ReadyForQuery. */
  | { ready: number }
  /** Up to a message of this type (its letter). */
  | { code: string }
  /** Until nothing comes for that long (after a Flush, for instance). */
  | { quiet: number };

export interface Step {
  send: Buffer;
  /** Write the bytes in pieces of this size, one TCP write each. */
  chunk?: number;
  until: Until;
  /** Send a CancelRequest for this session that many ms after the bytes. */
  cancelAfterMs?: number;
  /** Collect what else arrives within that many ms (asynchronous messages). */
  linger?: number;
}

export interface Sequence {
  name: string;
  /** Simple-query SQL run first; its replies are not compared. */
  setup?: string;
  steps: Step[];
  /** `shape`: rows compared by column count only (values that legitimately differ). */
  rows?: 'values' | 'shape';
  /** Each step must be answered within this many ms (cancel tests). */
  withinMs?: number;
  /** A known difference: the sequence runs and reports, but does not fail the suite. */
  todo?: string;
}

export interface Target {
  name: string;
  port: number;
  parameters: Record<string, string>;
  password?: string;
}

/** Builds a byte string of frontend messages. */
export function messages(build: (w: MessageWriter) => void): Buffer {
  const w = new MessageWriter(256);
  build(w);
  return w.take();
}

const letter = (code: number) => String.fromCharCode(code);

function shortValue(value: Buffer | null): string {
  if (value === null) return 'NULL';
  if (value.length <= 64) return JSON.stringify(value.toString('latin1'));
  return `${value.length}B:${createHash('md5').update(value).digest('hex').slice(0, 12)}`;
}

/** One message as the line that must match between PostgreSQL and the proxy. */
export function normalize(frame: Frame, rows: 'values' | 'shape'): string {
  const type = letter(frame.code);
  switch (frame.code) {
    case BackendCode.CommandComplete:
      return `C ${decodeCommandComplete(frame.body)}`;
    case BackendCode.ErrorResponse:
    case BackendCode.NoticeResponse: {
      const fields = decodeFields(frame.body);
      return `${type} ${fields['V'] ?? fields['S']} ${fields['C']}`;
    }
    case BackendCode.ReadyForQuery:
      return `Z ${letter(frame.body[0] as number)}`;
    case BackendCode.ParameterStatus:
      // Values may differ (the proxy reports its own view of some); the name must not.
      return `S ${decodeParameterStatus(frame.body)[0]}`;
    case BackendCode.RowDescription:
      // Table OIDs and column numbers belong to each server; names, types and formats do not.
      return `T ${decodeRowDescription(frame.body)
        .map((f) => `${f.name}:${f.typeOid}:${f.format}`)
        .join(',')}`;
    case BackendCode.ParameterDescription:
      return `t ${decodeParameterDescription(frame.body).join(',')}`;
    case BackendCode.DataRow: {
      const values = decodeDataRow(frame.body);
      return rows === 'shape' ? `D ${values.length}` : `D ${values.map(shortValue).join('|')}`;
    }
    case BackendCode.NotificationResponse: {
      // The sender's process id differs; channel and payload do not.
      const end = frame.body.indexOf(0, 4);
      const channel = frame.body.toString('utf8', 4, end);
      const payload = frame.body.toString('utf8', end + 1, frame.body.length - 1);
      return `A ${channel} ${payload}`;
    }
    case BackendCode.CopyInResponse:
    case BackendCode.CopyOutResponse:
      return `${type} ${frame.body[0]} ${frame.body.readInt16BE(1)}`;
    case BackendCode.CopyData:
      return `d ${shortValue(frame.body)}`;
    default:
      return type;
  }
}

function done(until: Until, frame: Frame, readySeen: number): boolean {
  if ('ready' in until) return frame.code === BackendCode.ReadyForQuery && readySeen >= until.ready;
  if ('code' in until) return letter(frame.code) === until.code;
  return false;
}

/** Runs one sequence on a fresh connection; returns the normalized replies, one line each. */
export async function runSequence(target: Target, sequence: Sequence): Promise<string[]> {
  const client = await WireClient.connect(target.port);
  const lines: string[] = [];
  try {
    const startup = await client.startup(target.parameters, target.password);
    if (sequence.setup !== undefined) {
      await client.send(
        messages((w) =>
          w
            .begin(0x51)
            .cstring(sequence.setup as string)
            .end(),
        ),
      );
      const reply = await client.untilReady();
      const error = reply.find((f) => f.code === BackendCode.ErrorResponse);
      if (error !== undefined) {
        throw new Error(
          `setup failed on ${target.name}: ${JSON.stringify(decodeFields(error.body))}`,
        );
      }
    }
    const rows = sequence.rows ?? 'values';
    for (const [index, step] of sequence.steps.entries()) {
      const started = Date.now();
      await client.send(step.send, step.chunk);
      if (step.cancelAfterMs !== undefined) {
        const { processId, secretKey } = startup;
        setTimeout(() => {
          sendCancel(target.port, processId, secretKey).catch(() => {});
        }, step.cancelAfterMs);
      }
      if ('quiet' in step.until) {
        for (const frame of await client.drain(step.until.quiet))
          lines.push(normalize(frame, rows));
      } else {
        let readySeen = 0;
        while (true) {
          const frame = await client.next(30_000);
          if (frame === undefined) {
            lines.push(client.closed ? '<closed>' : '<timeout>');
            return lines;
          }
          if (frame.code === BackendCode.ReadyForQuery) readySeen++;
          lines.push(normalize(frame, rows));
          if (done(step.until, frame, readySeen)) break;
        }
      }
      if (step.linger !== undefined) {
        for (const frame of await client.drain(step.linger)) lines.push(normalize(frame, rows));
      }
      const took = Date.now() - started;
      if (sequence.withinMs !== undefined && took > sequence.withinMs) {
        lines.push(`<step ${index + 1} took ${took} ms, more than ${sequence.withinMs}>`);
      }
    }
    return lines;
  } finally {
    client.close();
  }
}
