import { createServer as createTcpServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, describeError } from '../errors.js';
import type { Admitted, ConnectionGuard } from './connection-guard.js';

/** What every HTTP/2 client sends first (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface GrpcListener {
  readonly port: number;
  /** Stops accepting (the port is released); connections already handed to grpc-js stay theirs. */
  close(): void;
  /**
   * Shutdown: stops accepting and sends every connection handed to grpc-js an HTTP/2 GOAWAY (its
   * open calls go on, new ones go elsewhere); those still open after `graceMs` are reset.
   */
  drain(graceMs: number): void;
}

/**
 * Reads the client preface off `socket` and hands the socket on once all of it arrived (the bytes
 * put back), or refuses it at the first byte that differs.
 */
function awaitPreface(socket: Socket, admitted: Admitted, handOn: () => void): void {
  let got = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    got = Buffer.concat([got, chunk]);
    const n = Math.min(got.length, PREFACE.length);
    if (!got.subarray(0, n).equals(PREFACE.subarray(0, n))) {
      socket.off('data', onData);
      admitted.refuse('not_http2');
      return;
    }
    if (got.length < PREFACE.length) return;
    socket.off('data', onData);
    socket.pause();
    socket.unshift(got);
    admitted.ready();
    handOn();
  };
  socket.on('data', onData);
}

/**
 * The gRPC port, listened on here rather than by grpc-js's bindAsync so that every connection
 * passes the ConnectionGuard (a cap, and a deadline for the TLS handshake and the HTTP/2 preface)
 * before grpc-js sees it: grpc-js accepts any number of connections and keeps one that never
 * speaks for ever. Connections that pass are injected into grpc-js as plaintext HTTP/2 (with TLS,
 * already decrypted here: the TLS server offers only ALPN "h2").
 */
export async function listenGrpc(
  server: grpc.Server,
  host: string,
  port: number,
  tls: TlsPair | undefined,
  guard: ConnectionGuard,
  handshakeMs: number,
): Promise<GrpcListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const inject = (socket: Socket, admitted: Admitted): void =>
    awaitPreface(socket, admitted, () => injector.injectConnection(socket));
  let listener: NetServer;
  if (tls) {
    // A TLS socket reports its peer's address and port, the key back to its TCP connection's admission.
    const pending = new Map<string, Admitted>();
    const key = (s: Socket): string => `${s.remoteAddress ?? ''}|${s.remotePort ?? ''}`;
    listener = createTlsServer(
      { cert: tls.cert, key: tls.key, ALPNProtocols: ['h2'], handshakeTimeout: handshakeMs },
      (socket: TLSSocket) => {
        const admitted = pending.get(key(socket));
        pending.delete(key(socket));
        if (!admitted) return void socket.destroy();
        if (socket.alpnProtocol !== 'h2') return admitted.refuse('not_http2');
        inject(socket, admitted);
      },
    );
    listener.on('connection', (raw: Socket) => {
      const admitted = guard.admit(raw);
      if (!admitted) return;
      const k = key(raw);
      pending.set(k, admitted);
      raw.once('close', () => pending.delete(k));
    });
    // A failed handshake closes its socket (the guard counts it gone); nothing to report per client.
    listener.on('tlsClientError', () => undefined);
  } else {
    listener = createTcpServer((socket) => {
      const admitted = guard.admit(socket);
      if (admitted) inject(socket, admitted);
    });
  }
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (err) =>
      reject(new InvalidArgumentError('server.port', `cannot listen on ${host}:${port}: ${describeError(err)}`)),
    );
    listener.listen(port, host, () => resolve());
  });
  listener.on('error', () => undefined);
  return {
    port: (listener.address() as AddressInfo).port,
    close: () => {
      listener.close();
    },
    drain: (graceMs) => {
      listener.close();
      injector.drain(graceMs);
    },
  };
}
