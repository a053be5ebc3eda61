import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { dataServiceDefinition, loadDefinition } from '../../src/server/proto.js';

const svc = dataServiceDefinition(loadDefinition());
const PATH = '/flanstream.v1.DataService/StreamBatches';

/**
 * A client that opens StreamBatches and never reads a byte of the answer: raw HTTP/2 with gRPC
 * framing, the response stream paused, so HTTP/2 flow control stops the server once the stream's
 * window (64 KiB) is full. grpc-js clients keep reading into their own memory even when paused,
 * so they cannot stand in for a stalled trainer.
 */
export class IdleClients {
  private readonly session: ClientHttp2Session;
  private readonly streams: ClientHttp2Stream[] = [];

  constructor(target: string) {
    this.session = connect(`http://${target}`);
    this.session.on('error', () => undefined);
  }

  /** Opens a stream with `first` (a StreamRequest object) as its only message; never reads. */
  open(first: object): ClientHttp2Stream {
    const body = svc.StreamBatches!.requestSerialize(first);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const s = this.session.request({
      ':method': 'POST',
      ':path': PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    s.on('error', () => undefined);
    s.pause();
    s.write(frame);
    this.streams.push(s);
    return s;
  }

  /**
   * Opens a stream that reads `bytesPerTick` bytes every `tickMs` (a slow trainer: HTTP/2 flow
   * control paces the server to it). Resolves with every response decoded, once the stream closes.
   */
  openSlow(
    first: object,
    bytesPerTick: number,
    tickMs: number,
  ): Promise<{ responses: Record<string, unknown>[]; rstCode: number }> {
    const s = this.open(first);
    const responses: Record<string, unknown>[] = [];
    let buf = Buffer.alloc(0);
    let allowance = 0;
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const len = buf.readUInt32BE(1);
        const msg = svc.StreamBatches!.responseDeserialize(buf.subarray(5, 5 + len)) as Record<string, unknown>;
        responses.push(msg);
        buf = buf.subarray(5 + len);
        // After the StreamEnd a client reads the status and closes its side, as grpc clients do.
        if (msg.end) allowance = Infinity;
      }
      allowance -= chunk.length;
      if (allowance <= 0) s.pause();
    });
    s.on('trailers', () => s.end());
    const timer = setInterval(() => {
      if (allowance !== Infinity) allowance = bytesPerTick;
      s.resume();
    }, tickMs);
    return new Promise((resolve) =>
      s.on('close', () => {
        clearInterval(timer);
        resolve({ responses, rstCode: s.rstCode ?? 0 });
      }),
    );
  }

  close(): void {
    for (const s of this.streams) s.close();
    this.session.destroy();
  }
}
