import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PROTO_FILE, PROTO_ROOT } from '../../src/server/proto.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { ROOT } from './helpers/dist.js';

const run = promisify(execFile);
const PYTHON = process.env.FLANSTREAM_PYTHON ?? '/usr/bin/python3';
const HEALTH_FILE = 'health/v1/health.proto';
const REFLECTION_PROTO = join(
  ROOT,
  'node_modules',
  '@grpc',
  'reflection',
  'build',
  'proto',
  'grpc',
  'reflection',
  'v1',
  'reflection.proto',
);

interface Report {
  services: string[];
  files: string[];
  pool_errors: Record<string, string>;
  not_from_protoc: string[];
  differ_from_protoc: string[];
  corpus_info_keys?: string[];
  first_task?: Record<string, unknown>;
  stream_spec_fields?: Record<string, string>;
  weights_entry?: string;
  weights_is_map?: boolean;
}

/**
 * Server reflection as protoc-based tools use it: a grpcio client of grpc.reflection.v1 pulls
 * every file, a standard (strict) descriptor pool loads them, each equals what `protoc
 * --descriptor_set_out` makes of the same .proto, and a call built from them alone works.
 */
describe('server reflection serves the descriptors protoc produces', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flanstream-reflection-'));
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
  });
  afterAll(async () => {
    await ts?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a strict descriptor pool accepts every reflected file, equal to protoc output, and calls through it', async () => {
    const healthRoot = healthProtoPath.slice(0, -HEALTH_FILE.length);
    const protocSet = join(dir, 'protoc.pb');
    const reflectionSet = join(dir, 'reflection.pb');
    await run('protoc', [
      `-I${PROTO_ROOT}`,
      `-I${healthRoot}`,
      `--descriptor_set_out=${protocSet}`,
      PROTO_FILE,
      HEALTH_FILE,
    ]);
    await run('protoc', [
      `-I${dirname(dirname(dirname(dirname(REFLECTION_PROTO))))}`,
      '--include_imports',
      `--descriptor_set_out=${reflectionSet}`,
      'grpc/reflection/v1/reflection.proto',
    ]);
    const { stdout } = await run(
      PYTHON,
      [join(ROOT, 'test', 'ops', 'tools', 'reflection_check.py'), ts.target, reflectionSet, protocSet],
      { timeout: 60_000 },
    );
    const r = JSON.parse(stdout) as Report;
    expect(r.services).toEqual(['flanstream.v1.DataService', 'grpc.health.v1.Health']);
    expect(r.files).toEqual([PROTO_FILE, HEALTH_FILE]);
    expect(r.pool_errors).toEqual({});
    expect(r.not_from_protoc).toEqual([]);
    expect(r.differ_from_protoc).toEqual([]);
    // The names protoc-based clients see: snake_case with JSON names, map entries as maps.
    expect(r.stream_spec_fields).toMatchObject({ batch_size: 'batchSize', seq_len: 'seqLen', world_size: 'worldSize' });
    expect(r.weights_entry).toBe('WeightsEntry');
    expect(r.weights_is_map).toBe(true);
    expect(r.corpus_info_keys).toContain('indexFingerprint');
    expect(r.first_task).toHaveProperty('path');
  });
});
