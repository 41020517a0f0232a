/** Connecting to NATS: one place decides the reconnect policy, so every component survives a server restart. */
import { type ConnectionOptions, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { connect } from "./transport/connect.ts";
import { credentialsFromEnv, inboxPrefix, type NatsConnectAuth, type NatsRole } from "./auth.ts";
import { NatsUnavailableError } from "./errors.ts";

export interface ConnectOptions {
  /** Client name shown by the server's monitoring. */
  name?: string;
  /** How long to keep trying the first connection; default 5 s. */
  connectTimeoutMs?: number;
  /**
   * Credentials and inbox prefix. Default: the ones in the URL (`nats://user:pass@host:port`), else
   * NATS_CREDS, NATS_USER/NATS_PASSWORD or NATS_TOKEN from the environment, else none. The inbox prefix:
   * `auth.inboxPrefix`, else NATS_INBOX_PREFIX, else the role's.
   */
  auth?: NatsConnectAuth;
  /** The role connecting: its replies arrive under its own inbox prefix (auth.ts) unless `auth` names one. */
  role?: NatsRole;
}

/**
 * Connects with reconnects forever: after the first connection, an outage pauses the client instead of
 * closing it, and subscriptions and consumers resume when the server is back.
 */
export async function connectNats(url: string, options: ConnectOptions = {}): Promise<NatsConnection> {
  const { servers, auth: urlAuth } = splitCredentials(url);
  const env = (name: string) => Deno.env.get(name) || undefined;
  const auth = options.auth ?? urlAuth ?? credentialsFromEnv(env);
  // The prefix must be one the user may subscribe to: NATS_INBOX_PREFIX names it when the user is not the
  // role's own (a `--role all` runtime child runs with the engine's user).
  const prefix = options.auth?.inboxPrefix ?? env("NATS_INBOX_PREFIX") ??
    (options.role ? inboxPrefix(options.role) : undefined);
  const authOptions = await connectAuthOptions(auth, prefix);
  const deadline = Date.now() + (options.connectTimeoutMs ?? 5_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      return await connect({
        servers,
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
        reconnectJitter: 50,
        pingInterval: 5_000,
        timeout: Math.max(250, Math.min(2_000, deadline - Date.now())),
        // Without it nats.js builds an Error (a stack capture) for every request and publish acknowledgement
        // in case it times out: 9% of the engine's CPU under W2 (docs/performance.md). Our own errors name the
        // subject and carry the client's error as their cause.
        noAsyncTraces: true,
        // nats.js reads tls:// as a plain host; the scheme is the user asking for TLS whatever the server offers.
        ...(servers.some((s) => /^tls:\/\//i.test(s)) ? { tls: {} } : {}),
        ...authOptions,
      });
    } catch (e) {
      lastError = e;
      // Wrong credentials do not get better by waiting.
      if (isAuthError(e)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  const hint = isAuthError(lastError)
    ? `Check the credentials (NATS_CREDS, or NATS_USER and NATS_PASSWORD).`
    : `Is nats-server running (with -js)? Unset NATS_URL to let Compozy start a managed server.`;
  throw new NatsUnavailableError(
    `Cannot connect to NATS at ${servers.join(",")}: ${reason}. ${hint}`,
    servers.join(","),
    { cause: lastError },
  );
}

/**
 * Takes `user:pass@` out of each server URL (nats.js does not read them) and returns the first found. A
 * URL without credentials is returned as given.
 */
export function splitCredentials(url: string): { servers: string[]; auth?: NatsConnectAuth } {
  let auth: NatsConnectAuth | undefined;
  const servers = url.split(",").map((s) => s.trim()).filter(Boolean).map((server) => {
    const match = /^([a-z]+:\/\/)?([^@/]*)@(.+)$/i.exec(server);
    if (!match) return server;
    const [, scheme = "", userinfo, rest] = match;
    const colon = userinfo.indexOf(":");
    const user = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
    const pass = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
    auth ??= pass === undefined ? { token: user } : { user, pass };
    return `${scheme}${rest}`;
  });
  return { servers, auth };
}

async function connectAuthOptions(
  auth: NatsConnectAuth | undefined,
  prefix: string | undefined,
): Promise<Partial<ConnectionOptions>> {
  const out: Partial<ConnectionOptions> = prefix ? { inboxPrefix: prefix } : {};
  if (!auth) return out;
  if (auth.credsFile) {
    out.authenticator = credsAuthenticator(await Deno.readFile(auth.credsFile));
  } else if (auth.user !== undefined) {
    out.user = auth.user;
    out.pass = auth.pass;
  } else if (auth.token !== undefined) {
    out.token = auth.token;
  }
  return out;
}

function isAuthError(e: unknown): boolean {
  return e instanceof Error && /authorization|authentication/i.test(`${e.name} ${e.message}`);
}
