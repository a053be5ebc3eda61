#!/usr/bin/env node
// `tsc -p tsconfig.json --noEmit` and `eslint .` in one process over one TypeScript program, for
// `npm test`: eslint's typed rules (no-floating-promises, no-misused-promises, await-thenable)
// take their types from the program the typecheck built instead of building it a second time,
// with the same config and rules as `npm run lint`. Prints the typecheck's diagnostics and
// eslint's report; exits non-zero when either found a problem.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const started = Date.now();
const secs = () => ((Date.now() - started) / 1000).toFixed(1);

const config = ts.getParsedCommandLineOfConfigFile(
  resolve(root, 'tsconfig.json'),
  { noEmit: true },
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  },
);
const program = ts.createProgram({
  rootNames: config.fileNames,
  options: config.options,
  projectReferences: config.projectReferences,
  configFileParsingDiagnostics: ts.getConfigFileParsingDiagnostics(config),
});
const diagnostics = ts.getPreEmitDiagnostics(program);
const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
if (diagnostics.length) process.stdout.write(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
const typesOk = !diagnostics.some((d) => d.category === ts.DiagnosticCategory.Error);
console.log(`${typesOk ? 'ok' : 'FAILED'}: typecheck (${secs()} s)`);

const eslint = new ESLint({
  cwd: root,
  overrideConfig: { languageOptions: { parserOptions: { projectService: false, programs: [program] } } },
});
const results = await eslint.lintFiles(['.']);
const report = await (await eslint.loadFormatter('stylish')).format(results);
if (report) process.stdout.write(report);
const lintOk = results.every((r) => r.errorCount === 0 && r.fatalErrorCount === 0);
console.log(`${lintOk ? 'ok' : 'FAILED'}: eslint (${secs()} s since the start)`);
process.exit(typesOk && lintOk ? 0 : 1);
