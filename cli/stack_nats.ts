/**
 * The NATS of a stack: a managed server (for `compozy dev` and `start --role all` without NATS_URL) that
 * requires a user per role, or the operator's servers from NATS_URL with credentials from the URL or the
 * environment. Either way the stack's own connection, the runtime child's credentials and the addresses
 * its sandboxes may not reach are decided here.
 *
 * @module
 */
import { join } from "node:path";
import { parseDuration } from "../engine/domain/duration.ts";
import { type NatsConfig, parseSize } from "../engine/domain/project/nats_config.ts";
import {
  BUCKETS,
  credentialsEnv,
  generateNatsAuth,
  inboxPrefix,
  ManagedNatsServer,
  MAX_REPLICAS,
  type NatsConnectAuth,
  type NatsRole,
  type ProvisionOptions,
  roleConnectAuth,
  splitCredentials,
  STREAMS,
} from "../pkg/nats/mod.ts";
import { CliError } from "./cli_error.ts";
import type { Role } from "./roles.ts";

export interface StackNats {
  /** The servers, without credentials: safe to print and to pass in argv. */
  url: string;
  /** The stack's own credentials; undefined means the URL had none (connectNats reads the environment). */
  auth?: NatsConnectAuth;
  /** Added to the runtime child's environment: its credentials and the ports its sandboxes may not reach. */
  runtimeEnv: Record<string, string>;
  managed?: ManagedNatsServer;
}

/** The NATS user of a process role; `all` runs the engine and the API on one connection, the engine's. */
export function natsRoleOf(role: Role): NatsRole {
  return role === "all" ? "engine" : role;
}

export async function natsLinkFor(
  options: { role: Role; natsUrl?: string; stateDir: string },
): Promise<StackNats> {
  if (options.natsUrl) {
    const { servers, auth } = splitCredentials(options.natsUrl);
    // The child inherits NATS_CREDS / NATS_USER / NATS_PASSWORD, and COMPOZY_SANDBOX_DENY_NET for the
    // cluster and monitoring ports, from our environment; credentials from the URL go by environment too.
    // It runs with our user, so it must use our inbox prefix, unless the operator named one.
    const prefix = Deno.env.get("NATS_INBOX_PREFIX") || inboxPrefix(natsRoleOf(options.role));
    return {
      url: servers.join(","),
      auth,
      runtimeEnv: { ...credentialsEnv(auth), NATS_INBOX_PREFIX: prefix },
    };
  }
  const auth = generateNatsAuth();
  const managed = await ManagedNatsServer.start({ storeDir: join(options.stateDir, "nats"), auth });
  // The managed server listens on its client port only (no cluster, no monitoring).
  const denied = [Deno.env.get("COMPOZY_SANDBOX_DENY_NET"), `127.0.0.1:${managed.port}`].filter(Boolean);
  return {
    url: managed.url,
    auth: roleConnectAuth(auth, "engine"),
    runtimeEnv: {
      ...credentialsEnv(auth.users.runtime),
      NATS_INBOX_PREFIX: inboxPrefix("runtime"),
      COMPOZY_SANDBOX_DENY_NET: denied.join(","),
    },
    managed,
  };
}

/** Environment variable that overrides `nats.replicas` of compozy.yaml. */
export const REPLICAS_ENV = "COMPOZY_NATS_REPLICAS";

/** Provisioning options from the project's `nats:` section; COMPOZY_NATS_REPLICAS wins over `replicas`. */
export function provisionOptions(
  config: NatsConfig | undefined,
  env: (name: string) => string | undefined,
): ProvisionOptions {
  const fromEnv = env(REPLICAS_ENV);
  let replicas = config?.replicas;
  if (fromEnv !== undefined && fromEnv !== "") {
    replicas = Number(fromEnv);
    if (!/^[0-9]+$/.test(fromEnv) || replicas < 1 || replicas > MAX_REPLICAS) {
      throw new CliError(`Invalid ${REPLICAS_ENV}=${fromEnv}: expected an integer from 1 to ${MAX_REPLICAS}`);
    }
  }
  const maxAgeMs: Record<string, number> = {};
  const maxBytes: Record<string, number> = {};
  const names = { events: STREAMS.events, logs: STREAMS.logs, dead_letters: STREAMS.deadLetters } as const;
  for (const [key, stream] of Object.entries(names)) {
    const limits = config?.streams?.[key as keyof typeof names];
    if (limits?.max_age) maxAgeMs[stream] = parseDuration(limits.max_age);
    if (limits?.max_bytes !== undefined) maxBytes[stream] = parseSize(limits.max_bytes);
  }
  const memoryAge = config?.agent_memory?.max_age;
  const ttlMs = memoryAge ? { [BUCKETS.agentMemory]: parseDuration(memoryAge) } : undefined;
  return { replicas, maxAgeMs, maxBytes, ...ttlMs && { ttlMs } };
}
