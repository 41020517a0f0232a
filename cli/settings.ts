/**
 * Flag defaults from the environment (API.md: every flag has an environment equivalent). Flags win over
 * the environment, the environment over these defaults.
 *
 * @module
 */
import { CliError } from "./cli_error.ts";

export const DEFAULT_PORT = 3001;

export const ENV = {
  port: "COMPOZY_PORT",
  host: "COMPOZY_HOST",
  natsUrl: "NATS_URL",
  apiKey: "COMPOZY_API_KEY",
  server: "COMPOZY_SERVER",
  instanceId: "COMPOZY_INSTANCE_ID",
  bodyLimit: "COMPOZY_BODY_LIMIT",
} as const;

export function envValue(name: string): string | undefined {
  const value = Deno.env.get(name);
  return value === undefined || value === "" ? undefined : value;
}

/**
 * A whole number written in decimal digits, or undefined for anything else: `Number` read `0x10`, `1e3`,
 * ` 80` as 16, 1000 and 80, and an empty `--port ""` as 0 (a random port), as the API's `?limit=` once did.
 */
export function decimalInteger(value: string): number | undefined {
  return /^[0-9]{1,15}$/.test(value) ? Number(value) : undefined;
}

/** Parses a port flag or `COMPOZY_PORT`; 0 asks the system for a free port. */
export function parsePort(value: string | undefined, fallback = DEFAULT_PORT): number {
  if (value === undefined) return fallback;
  const port = decimalInteger(value);
  if (port === undefined || port > 65_535) {
    throw new CliError(`Invalid port '${value}': expected an integer from 0 to 65535`);
  }
  return port;
}

/** The API server the client commands talk to: `--server`, `COMPOZY_SERVER`, else the local dev server. */
export function serverUrl(flag: string | undefined): string {
  const url = flag ?? envValue(ENV.server) ?? `http://127.0.0.1:${parsePort(envValue(ENV.port))}`;
  const invalid = (why: string) =>
    new CliError(`Invalid server URL '${url}': ${why}; expected e.g. http://127.0.0.1:3001`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid("not a URL");
  }
  // `localhost:3001` parses, as scheme `localhost:`; a query or fragment had the API's path glued after it.
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw invalid("not http or https");
  if (parsed.search || parsed.hash || url.includes("#")) throw invalid("it has a query or a fragment");
  if (parsed.username || parsed.password) throw invalid("credentials go in --api-key, not in the URL");
  return parsed.toString().replace(/\/$/, "");
}

/** Parses a body limit in bytes (`--body-limit` or `COMPOZY_BODY_LIMIT`); undefined keeps the default. */
export function parseBodyLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const bytes = decimalInteger(value);
  if (bytes === undefined || bytes < 1) {
    throw new CliError(`Invalid body limit '${value}': expected a positive number of bytes`);
  }
  return bytes;
}
