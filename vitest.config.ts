import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'clients/ts/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    // No request leaves the machine: the AWS SDK must never fall back to the instance metadata
    // service (tests pass explicit credentials to the local S3 server). Children inherit it.
    env: { AWS_EC2_METADATA_DISABLED: 'true' },
  },
});
