import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_REGION: 'us-east-1',
      // Lambda sets it; Powertools reports cold starts only when it says on-demand.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_ACCESS_KEY_ID: 'local-test',
      AWS_SECRET_ACCESS_KEY: 'local-test',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    },
  },
});
