/**
 * Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundles (see scripts/build.ts).
 * Lambda hands every function its role's credentials in environment variables, so the SDK's default
 * chain (profiles, SSO, web identity, container and instance metadata) is code that never runs there:
 * without it the allocation bundle is about 40 % smaller and starts faster. Tests and scripts that run
 * from source keep the SDK's full chain.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

export const defaultProvider = (init?: Parameters<typeof fromEnv>[0]) => fromEnv(init);
