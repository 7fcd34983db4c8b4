import net from 'node:net';
import { serialize } from 'pg-protocol';

/*
 * A minimal PostgreSQL client for tests that need exact bytes: binary parameters with declared
 * type OIDs, binary results as raw Buffers. node-postgres cannot: its protocol parser decodes
 * every DataRow field as UTF-8 text, which corrupts binary values. Trust authentication only.
 */

export interface Field {
  name: string;
  oid: number;
}

export interface Result {
  fields: Field[];
  rows: (Buffer | null)[][];
  command: string;
}

interface Pending {
  results: Result[];
  current: Result | undefined;
  error: Error | undefined;
  resolve: (results: Result[]) => void;
  reject: (error: Error) => void;
}

export class WireClient {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly queue: Pending[] = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('error', (error) => this.failAll(error));
    socket.on('close', () => this.failAll(new Error('connection closed')));
  }

  static async connect(options: { host: string; port: number; user: string; database: string }) {
    const socket = net.connect(options.port, options.host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new WireClient(socket);
    const ready = client.expect();
    socket.write(serialize.startup({ user: options.user, database: options.database }));
    await ready;
    return client;
  }

  /** Simple protocol: any number of statements, results in text format. */
  async query(sql: string): Promise<Result[]> {
    const done = this.expect();
    this.socket.write(serialize.query(sql));
    return done;
  }

  /**
   * Extended protocol: Parse with `types`, Bind with every Buffer value in binary format (strings
   * in text), every result column in binary format.
   */
  async run(sql: string, values: (Buffer | string | null)[] = [], types: number[] = []) {
    const done = this.expect();
    this.socket.write(
      Buffer.concat([
        serialize.parse({ text: sql, types }),
        serialize.bind({ values, binary: true }),
        serialize.describe({ type: 'P', name: '' }),
        serialize.execute({ portal: '', rows: 0 }),
        serialize.sync(),
      ]),
    );
    const results = await done;
    return results[0] ?? { fields: [], rows: [], command: '' };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.end(serialize.end());
    await new Promise((resolve) => this.socket.once('close', resolve));
  }

  private expect(): Promise<Result[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ results: [], current: undefined, error: undefined, resolve, reject });
    });
  }

  private failAll(error: Error): void {
    for (const pending of this.queue.splice(0)) pending.reject(error);
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 5) {
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < length + 1) return;
      const code = String.fromCharCode(this.buffer[0]!);
      const body = this.buffer.subarray(5, length + 1);
      this.buffer = this.buffer.subarray(length + 1);
      this.handle(code, body);
    }
  }

  private handle(code: string, body: Buffer): void {
    const pending = this.queue[0];
    if (pending === undefined) return;
    const reader = new Reader(body);
    switch (code) {
      case 'R':
        if (reader.int32() !== 0)
          pending.error = new Error('only trust authentication is supported');
        return;
      case 'T': {
        const count = reader.int16();
        const fields: Field[] = [];
        for (let i = 0; i < count; i++) {
          const name = reader.cstring();
          reader.skip(6);
          fields.push({ name, oid: reader.int32() });
          reader.skip(8);
        }
        pending.current = { fields, rows: [], command: '' };
        return;
      }
      case 'D': {
        const count = reader.int16();
        const row: (Buffer | null)[] = [];
        for (let i = 0; i < count; i++) row.push(reader.bytes());
        pending.current ??= { fields: [], rows: [], command: '' };
        pending.current.rows.push(row);
        return;
      }
      case 'C': {
        const result = pending.current ?? { fields: [], rows: [], command: '' };
        result.command = reader.cstring();
        pending.results.push(result);
        pending.current = undefined;
        return;
      }
      case 'E': {
        const fields: Record<string, string> = {};
        for (let kind = reader.byte(); kind !== 0; kind = reader.byte()) {
          fields[String.fromCharCode(kind)] = reader.cstring();
        }
        pending.error ??= Object.assign(new Error(fields['M'] ?? 'error'), { code: fields['C'] });
        return;
      }
      case 'Z':
        this.queue.shift();
        if (pending.error) pending.reject(pending.error);
        else pending.resolve(pending.results);
        return;
      default:
        return;
    }
  }
}

class Reader {
  private offset = 0;
  constructor(private readonly buffer: Buffer) {}
  byte(): number {
    return this.buffer[this.offset++]!;
  }
  int16(): number {
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  int32(): number {
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  skip(bytes: number): void {
    this.offset += bytes;
  }
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }
  /** A length-prefixed value, copied so it does not pin the receive buffer; -1 is NULL. */
  bytes(): Buffer | null {
    const length = this.int32();
    if (length < 0) return null;
    const value = Buffer.from(this.buffer.subarray(this.offset, this.offset + length));
    this.offset += length;
    return value;
  }
}
