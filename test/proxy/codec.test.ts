import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrontendCode } from '../../proxy/codes.ts';
import { type Frame, FrameReader } from '../../proxy/framing.ts';
import { decodeFrontend, decodeStartup, type FrontendMessage } from '../../proxy/frontend.ts';
import * as fe from '../../proxy/frontend-encode.ts';
import { MessageWriter } from '../../proxy/writer.ts';
import { SqlError } from '../../src/errors.ts';

/** Every frontend message a client may send after startup, encoded once. */
function sampleStream(): { bytes: Buffer; expected: FrontendMessage['type'][] } {
  const w = new MessageWriter(64);
  fe.query(w, 'SELECT 1; SELECT ñ');
  fe.parse(w, 's1', 'SELECT $1::int', [23]);
  fe.bind(w, 'p1', 's1', [0], [Buffer.from('42'), null], [1]);
  fe.describe(w, 'P', 'p1');
  fe.describe(w, 'S', 's1');
  fe.execute(w, 'p1', 10);
  fe.close(w, 'S', 's1');
  fe.flush(w);
  fe.sync(w);
  w.begin(FrontendCode.CopyData).bytes(Buffer.from('1\t2\n')).end();
  w.begin(FrontendCode.CopyDone).end();
  w.begin(FrontendCode.CopyFail).cstring('stop').end();
  fe.terminate(w);
  return {
    bytes: w.take(),
    expected: [
      'query',
      'parse',
      'bind',
      'describe',
      'describe',
      'execute',
      'close',
      'flush',
      'sync',
      'copyData',
      'copyDone',
      'copyFail',
      'terminate',
    ],
  };
}

function readAll(reader: FrameReader, chunks: Buffer[]): Frame[] {
  return chunks.flatMap((chunk) => reader.push(chunk));
}

describe('frontend codec', () => {
  it('decodes every message the same whatever byte boundary splits the stream', () => {
    const { bytes, expected } = sampleStream();
    const whole = readAll(new FrameReader(), [bytes]).map(decodeFrontend);
    assert.deepEqual(
      whole.map((m) => m.type),
      expected,
    );
    for (let cut = 1; cut < bytes.length; cut++) {
      const frames = readAll(new FrameReader(), [bytes.subarray(0, cut), bytes.subarray(cut)]);
      assert.deepEqual(frames.map(decodeFrontend), whole, `split at byte ${cut}`);
    }
  });

  it('decodes a stream that arrives one byte at a time', () => {
    const { bytes, expected } = sampleStream();
    const reader = new FrameReader();
    const chunks = [...bytes].map((byte) => Buffer.from([byte]));
    assert.deepEqual(
      readAll(reader, chunks).map((f) => decodeFrontend(f).type),
      expected,
    );
    assert.equal(reader.buffered, 0);
  });

  it('keeps the original bytes of each message for relaying', () => {
    const { bytes } = sampleStream();
    const frames = readAll(new FrameReader(), [bytes.subarray(0, 7), bytes.subarray(7)]);
    assert.deepEqual(Buffer.concat(frames.map((f) => f.raw)), bytes);
  });

  it('decodes Bind parameters, NULLs and formats', () => {
    const { bytes } = sampleStream();
    const bind = readAll(new FrameReader(), [bytes]).map(decodeFrontend)[2];
    assert.deepEqual(bind, {
      type: 'bind',
      portal: 'p1',
      statement: 's1',
      paramFormats: [0],
      params: [Buffer.from('42'), null],
      resultFormats: [1],
    });
  });

  it('decodes startup, SSLRequest and CancelRequest split at every byte', () => {
    const w = new MessageWriter();
    fe.startup(w, { user: 'alice', database: 'prod', application_name: 'psql' });
    const startup = w.take();
    for (let cut = 0; cut <= startup.length; cut++) {
      const reader = new FrameReader(true);
      const frames = readAll(reader, [startup.subarray(0, cut), startup.subarray(cut)]);
      assert.equal(frames.length, 1);
      assert.deepEqual(decodeStartup(frames[0] as Frame), {
        type: 'startup',
        major: 3,
        minor: 0,
        parameters: { user: 'alice', database: 'prod', application_name: 'psql' },
      });
    }
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    assert.deepEqual(decodeStartup(readAll(new FrameReader(true), [ssl])[0] as Frame), {
      type: 'ssl',
    });
    const cancel = new MessageWriter().begin(0).int32(80877102).int32(7).int32(-9).end().take();
    assert.deepEqual(decodeStartup(readAll(new FrameReader(true), [cancel])[0] as Frame), {
      type: 'cancel',
      processId: 7,
      secretKey: -9,
    });
  });

  it('refuses a message whose length is impossible, as a FATAL protocol violation', () => {
    const bad = Buffer.from([0x51, 0, 0, 0, 2]);
    assert.throws(
      () => new FrameReader().push(bad),
      (error: unknown) =>
        error instanceof SqlError && error.code === '08P01' && error.severity === 'FATAL',
    );
  });

  it('refuses a truncated message body and an unknown message type', () => {
    const truncated = new MessageWriter().begin(FrontendCode.Execute).cstring('p').end().take();
    const [frame] = new FrameReader().push(truncated);
    assert.throws(() => decodeFrontend(frame as Frame), /message too short/);
    const unknown = Buffer.from([0x7a, 0, 0, 0, 4]);
    const [odd] = new FrameReader().push(unknown);
    assert.throws(() => decodeFrontend(odd as Frame), /invalid frontend message type/);
  });

  it('refuses a startup message for protocol 2', () => {
    const v2 = new MessageWriter()
      .begin(0)
      .int32(2 << 16)
      .int8(0)
      .end()
      .take();
    const [frame] = new FrameReader(true).push(v2);
    assert.throws(() => decodeStartup(frame as Frame), /unsupported frontend protocol 2\.0/);
  });
});
