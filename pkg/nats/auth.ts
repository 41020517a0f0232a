/**
 * Who may do what on the bus. The one place that knows each role's subject permissions: it writes the
 * managed nats-server's configuration (users with random per-start passwords, `max_payload`) and gives
 * each role the connect options that match (its user and its own inbox prefix).
 *
 * Why per-role inboxes: replies travel on `<prefix>.<random>`; a role allowed `_INBOX.>` could read every
 * other role's replies (tool results, JetStream API answers). Each role may subscribe to its own prefix only.
 * A responder may publish to the inbox prefixes of the roles whose requests it answers (a reply subject ends
 * in a random token it learns only from the request).
 *
 * Why not `allow_responses` (nats-server's "one reply to a request you received"): nats-server 2.9 then
 * records the reply subject of every message it delivers to that client, JetStream deliveries included (each
 * carries its `$JS.ACK` reply), and keeps each record until it is used twice or expires. Acknowledgements are
 * allowed by `$JS.ACK.>` and never use a record, so the engine's map grew with every delivery for the whole
 * window, and past 4,096 records nats-server walked the entire map on each delivery
 * (`client.pruneReplyPerms`): 80% of its CPU in a 200-in-flight run, the collapse of docs/performance.md.
 *
 * The CLI (`compozy run`, `executions`, `deploy`) talks to the HTTP API, never to NATS: it has no user.
 *
 * @module
 */
import { join } from "node:path";
import { BUCKETS } from "./provision.ts";

export const NATS_ROLES = ["engine", "api", "runtime"] as const;
export type NatsRole = typeof NATS_ROLES[number];

/** Large enough for a 4 MiB sandbox output plus its envelope (JSON escaping, Protobuf, headers). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

export interface RolePermissions {
  publish: string[];
  subscribe: string[];
  /** The roles whose requests it answers: it may publish to their inboxes. */
  answers: NatsRole[];
}

/** The prefix of a role's reply subjects. */
export function inboxPrefix(role: NatsRole): string {
  return `_INBOX_${role}`;
}

/** Where JetStream and KV clients talk: needed by every role that reads or writes streams and buckets. */
const JETSTREAM_CLIENT = ["$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>"];

/** What the runtime's agent memory (pkg/runtime/agent_memory.ts) needs of JetStream: its bucket only. */
const AGENT_MEMORY_CLIENT = [
  `$KV.${BUCKETS.agentMemory}.>`,
  `$JS.API.STREAM.MSG.GET.KV_${BUCKETS.agentMemory}`,
  `$JS.API.DIRECT.GET.KV_${BUCKETS.agentMemory}.>`,
];

/**
 * What the runtime's turn fence (pkg/runtime/agent_turn_fence.ts) needs: its bucket's reads and checked
 * writes, and a core subscription on a key's subject to wait for another runner's write.
 */
const AGENT_TURNS_CLIENT = [
  `$KV.${BUCKETS.agentTurns}.>`,
  `$JS.API.STREAM.MSG.GET.KV_${BUCKETS.agentTurns}`,
  `$JS.API.DIRECT.GET.KV_${BUCKETS.agentTurns}.>`,
];

/**
 * Waiting for an execution's end is a core subscription on its state document's KV subject (end_watch.ts),
 * and a start that waits watches its task documents' too (task_watch.ts): documents these roles read anyway.
 */
const END_WATCH = [`$KV.${BUCKETS.workflowExecutions}.>`, `$KV.${BUCKETS.taskExecutions}.>`];

/** The engine answers the API (starts, health, metrics) and other engines (sub-workflow starts, presence). */
const ENGINE_ASKED_BY: NatsRole[] = ["api", "engine"];
/** The runtime answers the engine (tool and agent calls) and the API (health). */
const RUNTIME_ASKED_BY: NatsRole[] = ["engine", "api"];

/**
 * Each role's permissions, from the subjects of subjects.ts and what each role's code uses:
 * - engine: consumes and publishes every command and event, owns the KV buckets and provisions the streams
 *   (so the whole JetStream API), answers the API's requests and health probes and other engines' sub-workflow
 *   starts and presence questions.
 * - api: sends workflow commands (request/reply and JetStream), probes health, publishes its own logs, reads
 *   state, history and logs (KV, ordered consumers, the stream and consumer listings of /api/metrics),
 *   watches events and agents' live deltas for live views. It provisions too when it starts before any engine.
 * - runtime: answers tool and agent commands (core request/reply, queue group), publishes their events, live
 *   deltas, logs
 *   and dead letters; reads and writes agents' memory and their loops' turn fence, two KV buckets (a get by
 *   subject and a put with its acknowledgement to its own inbox; the fence's key subjects are watched with a
 *   core subscription). No other JetStream API or bucket, no workflow or task commands.
 */
export function rolePermissions(role: NatsRole): RolePermissions {
  const inbox = `${inboxPrefix(role)}.>`;
  switch (role) {
    case "engine":
      return {
        publish: ["compozy.>", ...JETSTREAM_CLIENT, ...inboxesOf(ENGINE_ASKED_BY)],
        subscribe: ["compozy.>", ...END_WATCH, inbox],
        answers: ENGINE_ASKED_BY,
      };
    case "api":
      return {
        publish: [
          "compozy.*.workflow.cmds.*.*",
          "compozy.health.*",
          // /api/metrics asks every engine for its figures (engine/engine_stats.ts).
          "compozy.metrics.engine",
          "compozy.*.*.logs.*.*",
          "compozy.dlq.>",
          ...JETSTREAM_CLIENT,
        ],
        // Live agent deltas (never stored) reach SSE clients from a core subscription (server/sse.ts).
        subscribe: [
          "compozy.*.*.evts.*.*",
          "compozy.*.agent.live.*.*",
          "compozy.*.*.logs.*.*",
          ...END_WATCH,
          inbox,
        ],
        answers: [],
      };
    case "runtime":
      return {
        publish: [
          "compozy.*.tool.evts.*.*",
          "compozy.*.agent.evts.*.*",
          "compozy.*.agent.live.*.*",
          "compozy.*.*.logs.*.*",
          "compozy.dlq.>",
          ...AGENT_MEMORY_CLIENT,
          ...AGENT_TURNS_CLIENT,
          ...inboxesOf(RUNTIME_ASKED_BY),
        ],
        subscribe: [
          "compozy.*.tool.cmds.*.execute",
          "compozy.*.agent.cmds.*.execute",
          // A task's cancel stops its tool call or agent loop in the runtime (service.ts, CancelHook).
          "compozy.*.task.evts.*.canceled",
          // The engine asks the runtime running a call whether it still does (runtime/held_calls.ts).
          "compozy.runtime.calls.*",
          "compozy.health.runtime",
          `$KV.${BUCKETS.agentTurns}.>`,
          inbox,
        ],
        answers: RUNTIME_ASKED_BY,
      };
  }
}

const DEFAULT_INBOX = "_INBOX.>";

/**
 * The inboxes a responder answers into: the askers' prefixes, and NATS's default `_INBOX.` that no role uses
 * but an operator's client does (`nats req compozy.health.runtime` with a user of their own).
 */
function inboxesOf(roles: NatsRole[]): string[] {
  return [...roles.map((role) => `${inboxPrefix(role)}.>`), DEFAULT_INBOX];
}

export interface NatsUser {
  user: string;
  pass: string;
}

/** The users of one managed server: one per role, passwords chosen at random for each start. */
export interface NatsAuth {
  users: Record<NatsRole, NatsUser>;
  /** A user allowed everything, for test harnesses that exercise the bus directly; absent in production. */
  superuser?: NatsUser;
  /** What cluster routes present to each other: a stranger cannot join the cluster and read its traffic. */
  route: NatsUser;
}

/** Credentials and inbox prefix for `connect()`. */
export interface NatsConnectAuth {
  user?: string;
  pass?: string;
  /** A `.creds` file (JWT and NKey seed), for operator-managed servers. */
  credsFile?: string;
  token?: string;
  inboxPrefix?: string;
}

export function generateNatsAuth(options: { superuser?: boolean } = {}): NatsAuth {
  const users = Object.fromEntries(
    NATS_ROLES.map((role) => [role, { user: `compozy-${role}`, pass: randomSecret() }]),
  ) as Record<NatsRole, NatsUser>;
  return {
    users,
    superuser: options.superuser ? { user: "compozy-test", pass: randomSecret() } : undefined,
    route: { user: "compozy-route", pass: randomSecret() },
  };
}

/** The connect options of `role` on a server configured from `auth`. */
export function roleConnectAuth(auth: NatsAuth, role: NatsRole): NatsConnectAuth {
  return { ...auth.users[role], inboxPrefix: inboxPrefix(role) };
}

export interface ServerConfigOptions {
  maxPayloadBytes?: number;
  /** Unique in a cluster; JetStream needs it there. */
  serverName?: string;
  /** This server's place in a cluster: where it listens for routes, and the routes to the others. */
  cluster?: { name: string; host: string; port: number; routes: { host: string; port: number }[] };
}

/**
 * The nats-server configuration (its syntax accepts JSON) with one user per role; without `auth`, an open
 * server (benchmarks only) that still takes large payloads.
 */
export function serverConfig(auth: NatsAuth | undefined, options: ServerConfigOptions = {}): string {
  const maxPayload = { max_payload: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES };
  if (!auth) return JSON.stringify(maxPayload, null, 2);
  const users: Record<string, unknown>[] = NATS_ROLES.map((role) => {
    const p = rolePermissions(role);
    return {
      user: auth.users[role].user,
      password: auth.users[role].pass,
      permissions: {
        publish: { allow: p.publish },
        subscribe: { allow: p.subscribe },
      },
    };
  });
  if (auth.superuser) users.push({ user: auth.superuser.user, password: auth.superuser.pass });
  const c = options.cluster;
  const route = `${encodeURIComponent(auth.route.user)}:${encodeURIComponent(auth.route.pass)}`;
  const cluster = c
    ? {
      cluster: {
        name: c.name,
        listen: `${c.host}:${c.port}`,
        authorization: { user: auth.route.user, password: auth.route.pass },
        routes: c.routes.map((r) => `nats-route://${route}@${r.host}:${r.port}`),
      },
    }
    : {};
  return JSON.stringify(
    {
      ...(options.serverName ? { server_name: options.serverName } : {}),
      ...maxPayload,
      authorization: { users },
      ...cluster,
    },
    null,
    2,
  );
}

/** Writes the configuration to `<dir>/nats-server.conf`, readable by its owner only (it holds passwords). */
export async function writeServerConfig(
  dir: string,
  auth: NatsAuth | undefined,
  options: ServerConfigOptions = {},
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, "nats-server.conf");
  // Remove first: `mode` applies only when the file is created, and an old file may be wider.
  await Deno.remove(path).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await Deno.writeTextFile(path, serverConfig(auth, options), { mode: 0o600, createNew: true });
  return path;
}

/**
 * The environment that hands credentials to a child process, read back by {@linkcode credentialsFromEnv}
 * (never argv: `ps` shows argv to every user of the machine).
 */
export function credentialsEnv(auth: NatsConnectAuth | undefined): Record<string, string> {
  if (auth?.credsFile) return { NATS_CREDS: auth.credsFile };
  // An inherited NATS_CREDS would win over the user: blank it.
  if (auth?.user !== undefined) {
    return { NATS_CREDS: "", NATS_USER: auth.user, NATS_PASSWORD: auth.pass ?? "" };
  }
  if (auth?.token !== undefined) return { NATS_TOKEN: auth.token };
  return {};
}

/**
 * Credentials of a NATS_URL deployment, from the environment: NATS_CREDS (a creds file), NATS_USER with
 * NATS_PASSWORD, or NATS_TOKEN. Undefined when none is set (an open server).
 */
export function credentialsFromEnv(env: (name: string) => string | undefined): NatsConnectAuth | undefined {
  const credsFile = env("NATS_CREDS");
  if (credsFile) return { credsFile };
  const user = env("NATS_USER");
  if (user) return { user, pass: env("NATS_PASSWORD") ?? "" };
  const token = env("NATS_TOKEN");
  if (token) return { token };
  return undefined;
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
