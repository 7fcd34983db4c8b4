/** Builders for the scripted message sequences of the conformance test. */
import { FrontendCode } from '../../proxy/codes.ts';
import * as fe from '../../proxy/frontend-encode.ts';
import type { MessageWriter } from '../../proxy/writer.ts';
import { messages, type Step } from './conformance-run.ts';

export const q = (sql: string) => messages((w) => fe.query(w, sql));
export const ready = (send: Buffer, count = 1): Step => ({ send, until: { ready: count } });
export const query = (sql: string): Step => ready(q(sql));
export const copyData = (w: MessageWriter, text: string) =>
  w.begin(FrontendCode.CopyData).bytes(Buffer.from(text)).end();
export const copyDone = (w: MessageWriter) => w.begin(FrontendCode.CopyDone).end();
export const copyFail = (w: MessageWriter, why: string) =>
  w.begin(FrontendCode.CopyFail).cstring(why).end();
export const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
/** Parse (unnamed), Bind, Describe portal, Execute, Sync. */
export const extended = (sql: string, params: (Buffer | null)[] = [], types: number[] = []) =>
  messages((w) => {
    fe.parse(w, '', sql, types);
    fe.bind(w, '', '', [], params, []);
    fe.describe(w, 'P', '');
    fe.execute(w, '', 0);
    fe.sync(w);
  });

export const MB = 1024 * 1024;
export const CHUNK = 64 * 1024;
