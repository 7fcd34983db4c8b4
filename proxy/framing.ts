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
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Stands for SQL text that was not valid UTF-8; it cannot occur in valid text (a lone NUL). */
export const INVALID_UTF8 = '\u0000invalid utf-8';

/** PostgreSQL refuses startup packets above 10,000 bytes (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP = 10_000;

/**
 * Cuts a byte stream into messages. Frames are views into the received chunks, never copies,
 * so relaying them forwards the original bytes. A message split across many reads is joined
 * once it is complete.
 */
export class FrameReader {
  /** Received bytes that do not yet make a whole message, kept as they came (joined once). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Size of the message being received, once its header is in. */
  private needed = 0;
  /** When set, the next message is a startup-phase one (no type byte). */
  startup: boolean;

  constructor(startup = false) {
    this.startup = startup;
  }

  push(chunk: Buffer): Frame[] {
    if (this.pending.length > 0 && this.pendingBytes + chunk.length < this.needed) {
      // Still short of the message announced: keep the piece, copy nothing yet.
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      return [];
    }
    let data = chunk;
    if (this.pending.length > 0) {
      this.pending.push(chunk);
      data = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const frames: Frame[] = [];
    let offset = 0;
    this.needed = 0;
    while (true) {
      const header = this.startup ? 4 : 5;
      if (data.length - offset < header) break;
      const code = this.startup ? 0 : (data[offset] as number);
      const length = data.readInt32BE(offset + header - 4);
      const limit = this.startup ? MAX_STARTUP : MAX_MESSAGE;
      if (length < 4 || length > limit) {
        throw new SqlError(
          SqlState.PROTOCOL_VIOLATION,
          this.startup
            ? `invalid length of startup packet (${length})`
            : `invalid message length ${length}`,
          { severity: 'FATAL' },
        );
      }
      const total = header - 4 + length;
      if (data.length - offset < total) {
        this.needed = total;
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
    if (offset < data.length) {
      this.pending = [data.subarray(offset)];
      this.pendingBytes = data.length - offset;
    }
    return frames;
  }

  /** Bytes received that do not yet form a whole message. */
  get buffered(): number {
    return this.pendingBytes;
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

  /**
   * A null-terminated SQL text. Bytes that are not valid UTF-8 (the only client encoding the
   * proxy speaks) become the text INVALID_UTF8, which the session answers with 22021.
   */
  sqlText(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) return this.cstring();
    const bytes = this.body.subarray(this.offset, end);
    this.offset = end + 1;
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return INVALID_UTF8;
    }
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
