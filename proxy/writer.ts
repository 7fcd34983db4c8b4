/**
 * Builds protocol messages into one growing buffer: each message reserves its 5-byte header
 * (type byte and length) and fills the length in place when it ends.
 */
export class MessageWriter {
  private buffer: Buffer;
  private offset = 0;
  private start = -1;

  constructor(size = 1024) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.offset + bytes));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  /** Starts a message; `code` 0 starts a startup-phase message, which has no type byte. */
  begin(code: number): this {
    this.ensure(5);
    if (code !== 0) this.buffer[this.offset++] = code;
    this.start = this.offset;
    this.offset += 4;
    return this;
  }

  end(): this {
    this.buffer.writeInt32BE(this.offset - this.start, this.start);
    this.start = -1;
    return this;
  }

  int8(value: number): this {
    this.ensure(1);
    this.buffer[this.offset++] = value;
    return this;
  }

  int16(value: number): this {
    this.ensure(2);
    this.buffer.writeInt16BE(value, this.offset);
    this.offset += 2;
    return this;
  }

  int32(value: number): this {
    this.ensure(4);
    this.buffer.writeInt32BE(value, this.offset);
    this.offset += 4;
    return this;
  }

  /** A null-terminated UTF-8 string. */
  cstring(value: string): this {
    const length = Buffer.byteLength(value);
    this.ensure(length + 1);
    this.buffer.write(value, this.offset, 'utf8');
    this.offset += length;
    this.buffer[this.offset++] = 0;
    return this;
  }

  bytes(value: Buffer): this {
    this.ensure(value.length);
    value.copy(this.buffer, this.offset);
    this.offset += value.length;
    return this;
  }

  /** A length-prefixed value as in Bind and DataRow; null is length -1. */
  value(value: Buffer | null): this {
    if (value === null) return this.int32(-1);
    return this.int32(value.length).bytes(value);
  }

  get length(): number {
    return this.offset;
  }

  /** Returns a copy of everything written and starts over. */
  take(): Buffer {
    const out = Buffer.from(this.buffer.subarray(0, this.offset));
    this.offset = 0;
    return out;
  }
}
