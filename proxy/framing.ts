import { SqlError, SqlState } from '../src/errors.ts';

/** One protocol message. `raw` is the whole message; `body` what follows the length word. */
export interface Frame {
  /** The type byte; 0 for a startup-phase message, which has none. */
  code: number;
  raw: Buffer;
  body: Buffer;
}

/** PostgreSQL refuses messages above 1 GB; so do we. */
const MAX_MESSAGE = 0x3fffffff;

/**
 * Cuts a byte stream into messages. Frames are views into the received chunks, never copies,
 * so relaying them forwards the original bytes. A message split across many reads is joined
 * once it is complete.
 */
export class FrameReader {
  private pending: Buffer | undefined;
  /** When set, the next message is a startup-phase one (no type byte). */
  startup: boolean;

  constructor(startup = false) {
    this.startup = startup;
  }

  push(chunk: Buffer): Frame[] {
    let data = chunk;
    if (this.pending !== undefined) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    const frames: Frame[] = [];
    let offset = 0;
    while (true) {
      const header = this.startup ? 4 : 5;
      if (data.length - offset < header) break;
      const code = this.startup ? 0 : (data[offset] as number);
      const length = data.readInt32BE(offset + header - 4);
      if (length < 4 || length > MAX_MESSAGE) {
        throw new SqlError(SqlState.PROTOCOL_VIOLATION, `invalid message length ${length}`, {
          severity: 'FATAL',
        });
      }
      const total = header - 4 + length;
      if (data.length - offset < total) {
        // Keep the partial message; a large one is joined once, when complete.
        break;
      }
      frames.push({
        code,
        raw: data.subarray(offset, offset + total),
        body: data.subarray(offset + header, offset + total),
      });
      offset += total;
      if (this.startup) this.startup = false;
    }
    if (offset < data.length) this.pending = data.subarray(offset);
    return frames;
  }

  /** Bytes received that do not yet form a whole message. */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }
}

/** Walks the fields of a message body. Throws a protocol violation on a truncated message. */
export class BodyReader {
  offset = 0;
  constructor(readonly body: Buffer) {}

  private need(bytes: number): void {
    if (this.offset + bytes > this.body.length) {
      throw new SqlError(SqlState.PROTOCOL_VIOLATION, 'invalid message format: message too short', {
        severity: 'FATAL',
      });
    }
  }

  int8(): number {
    this.need(1);
    return this.body[this.offset++] as number;
  }

  int16(): number {
    this.need(2);
    const value = this.body.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4);
    const value = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  cstring(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) {
      throw new SqlError(
        SqlState.PROTOCOL_VIOLATION,
        'invalid message format: unterminated string',
        {
          severity: 'FATAL',
        },
      );
    }
    const value = this.body.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const value = this.body.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** A length-prefixed value; -1 is NULL. */
  value(): Buffer | null {
    const length = this.int32();
    if (length === -1) return null;
    if (length < 0) {
      throw new SqlError(SqlState.PROTOCOL_VIOLATION, `invalid value length ${length}`, {
        severity: 'FATAL',
      });
    }
    return this.bytes(length);
  }

  get done(): boolean {
    return this.offset >= this.body.length;
  }
}
