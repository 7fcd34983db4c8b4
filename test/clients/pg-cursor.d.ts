// pg-cursor ships no types; this is the part of its API the client tests use.
declare module 'pg-cursor' {
  import type { Submittable } from 'pg';

  export default class Cursor<Row = Record<string, unknown>> implements Submittable {
    constructor(text: string, values?: unknown[], config?: { rowMode?: 'array' });
    submit: Submittable['submit'];
    read(rowCount: number): Promise<Row[]>;
    close(): Promise<void>;
  }
}
