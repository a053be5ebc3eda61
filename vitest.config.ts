import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'clients/ts/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // Two files at a time: most files spend much of their time waiting on child processes, servers
    // and timers, so two workers keep both cores busy (the default is one on a 2-core machine).
    maxWorkers: 2,
    // A worker keeps its loaded modules from file to file (the tokenizer, the proto, grpc-js):
    // loading them afresh for every file cost more CPU than many files' tests. Files restore
    // what they change (spies, TMPDIR) and share no mutable state.
    isolate: false,
    globalSetup: ['test/global-setup.ts'],
    // No request leaves the machine: the AWS SDK must never fall back to the instance metadata
    // service (tests pass explicit credentials to the local S3 server). Children inherit it.
    env: { AWS_EC2_METADATA_DISABLED: 'true' },
  },
});
