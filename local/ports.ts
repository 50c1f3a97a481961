/**
 * The local stack's ports: defaults, and the `LOCAL_*_PORT` variables that move them. Shared by
 * `npm start` (local/start.ts) and `npm run snapshot:local` (local/invoke.ts), so both read a variable
 * the same way.
 */

type Env = Record<string, string | undefined>;

/** Default ports of the local stack's servers. */
const LOCAL_PORTS = {
  api: 3000,
  lambda: 3002,
  koodrive: 8787,
  secretsManager: 4584,
  dynamodb: 8000,
  eventBridge: 4010,
} as const;

/** Ports of the local stack, each overridable by its variable. */
export interface LocalStackPorts {
  api: number;
  lambda: number;
  koodrive: number;
  secretsManager: number;
  dynamodb: number;
  eventBridge: number;
}

function port(env: Env, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new Error(`${name} is '${text}': it must be a port number from 0 to 65535.`);
  }
  return value;
}

/** The ports from `LOCAL_*_PORT` variables, defaults from `LOCAL_PORTS`. */
export function localPorts(env: Env): LocalStackPorts {
  return {
    api: port(env, 'LOCAL_API_PORT', LOCAL_PORTS.api),
    lambda: port(env, 'LOCAL_LAMBDA_PORT', LOCAL_PORTS.lambda),
    koodrive: port(env, 'LOCAL_KOODRIVE_PORT', LOCAL_PORTS.koodrive),
    secretsManager: port(env, 'LOCAL_SECRETS_MANAGER_PORT', LOCAL_PORTS.secretsManager),
    dynamodb: port(env, 'LOCAL_DYNAMODB_PORT', LOCAL_PORTS.dynamodb),
    eventBridge: port(env, 'LOCAL_EVENTBRIDGE_PORT', LOCAL_PORTS.eventBridge),
  };
}
