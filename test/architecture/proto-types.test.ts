import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { LOADER_OPTIONS as CLIENT_OPTIONS } from '../../clients/ts/proto.js';
import { LOADER_OPTIONS as SERVER_OPTIONS } from '../../src/server/proto.js';

/**
 * The wire schema has one source, the .proto: the TypeScript message types in proto/generated
 * are what `npm run gen:proto-types` makes of it today (a changed .proto without regenerated
 * types fails here), both loaders deliver the shape those types were generated for, and the TS
 * client takes the contract from proto/, not from the server's code.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHECKED_IN = join(ROOT, 'proto', 'generated');
const tmp = mkdtempSync(join(tmpdir(), 'flan-proto-types-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function generate(out: string, protoRoot = join(ROOT, 'proto')): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'gen-proto-types.mjs'), out, protoRoot], {
    cwd: ROOT,
    stdio: 'pipe',
  });
}

/** Every file of a tree (relative path → text). */
function tree(dir: string): Map<string, string> {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  return new Map(
    files.map((e) => [relative(dir, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name), 'utf8')]),
  );
}

/** What differs between two trees: files only in one, files with other contents. */
function drift(want: Map<string, string>, have: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [f, text] of want)
    if (!have.has(f)) out.push(`missing ${f}`);
    else if (have.get(f) !== text) out.push(`stale ${f}`);
  for (const f of have.keys()) if (!want.has(f)) out.push(`extra ${f}`);
  return out.sort();
}

describe('TypeScript wire types generated from the .proto (proto/generated)', () => {
  it('the checked-in types are what the generator makes of the .proto (else: npm run gen:proto-types)', () => {
    const out = join(tmp, 'now');
    generate(out);
    const want = tree(out);
    expect(want.has('flanstream/v1/Batch.d.ts')).toBe(true);
    expect(drift(want, tree(CHECKED_IN))).toEqual([]);
  });

  it('a field added to the .proto shows as drift in the message it was added to', () => {
    const protoRoot = join(tmp, 'proto');
    cpSync(join(ROOT, 'proto', 'flanstream'), join(protoRoot, 'flanstream'), { recursive: true });
    const file = join(protoRoot, 'flanstream', 'v1', 'data_service.proto');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('message Batch {\n', 'message Batch {\n  uint32 new_column = 99;\n'));
    const out = join(tmp, 'changed');
    generate(out, protoRoot);
    expect(drift(tree(out), tree(CHECKED_IN))).toEqual(['stale flanstream/v1/Batch.d.ts']);
    expect(tree(out).get('flanstream/v1/Batch.d.ts')).toContain("'newColumn': (number);");
  });

  it('server and client load the .proto with the options the types describe', () => {
    const shape = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };
    expect(SERVER_OPTIONS).toMatchObject(shape);
    expect(CLIENT_OPTIONS).toMatchObject(shape);
  });

  it('clients/ts imports no server code: only node:, @grpc packages, its own files and proto/generated', () => {
    const dir = join(ROOT, 'clients', 'ts');
    const bad: string[] = [];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      for (const { fileName } of ts.preProcessFile(readFileSync(join(dir, f), 'utf8'), true, true).importedFiles) {
        const ok =
          fileName.startsWith('node:') ||
          fileName.startsWith('@grpc/') ||
          fileName.startsWith('./') ||
          fileName.startsWith('../../proto/generated/');
        if (!ok) bad.push(`${f} → ${fileName}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
