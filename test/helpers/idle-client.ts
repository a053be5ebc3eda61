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
    const s = this.session.request({ ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers' });
    s.on('error', () => undefined);
    s.pause();
    s.write(frame);
    this.streams.push(s);
    return s;
  }

  close(): void {
    for (const s of this.streams) s.close();
    this.session.destroy();
  }
}
