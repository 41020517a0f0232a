/**
 * Turns a tool's `permissions:` config into the Deno flags of its sandbox process and the permissions of
 * the worker that runs the tool inside it.
 *
 * Two layers, on purpose:
 * - The process gets the tool's grants plus read access to the tool's folder and to the worker bootstrap
 *   file, because Deno checks read access when it loads the tool's static module graph.
 * - The worker that evaluates the tool gets exactly the tool's grants, nothing more: Deno loads a worker's
 *   static imports with the process's permissions but checks every call the tool makes against the
 *   worker's. So a tool with no `read` cannot read even its own folder (its modules are loaded for it).
 *
 * `run`, `ffi`, `sys` and `import` (remote modules) are never granted.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { ToolFailure } from "./tool_failure.ts";

/** Permissions from the tool's YAML config. Absent or `false` means none; `true` means all of that kind. */
export interface ToolPermissions {
  net?: boolean | string[];
  read?: boolean | string[];
  write?: boolean | string[];
  env?: boolean | string[];
}

/** A grant after validation: `true` (all), or a sorted list of entries (empty means none). */
export type Grant = true | readonly string[];

/** Validated permissions, with paths made absolute; equal configs give equal objects. */
export interface SandboxPermissions {
  readonly net: Grant;
  readonly read: Grant;
  readonly write: Grant;
  readonly env: Grant;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// Names that the dynamic loader, glibc or Deno's own start-up read from a sandbox process's environment
// (glibc's secure-execution list, DENO_*, the Rust runtime's RUST_*, NODE_OPTIONS). They act before and
// outside the permissions: LD_PRELOAD loads native code into the process, DENO_V8_FLAGS sets V8's flags,
// which no grant allows (run and ffi are never granted). Deno's OpenTelemetry exporter (OTEL_*) posts logs
// and metrics to any endpoint from a process with no net grant, and SSLKEYLOGFILE makes its TLS stack write
// a file no write grant names (review R-S4, R-S1).
// Some are also read while the process runs: glibc's resolver reads HOSTALIASES, LOCALDOMAIN and RES_OPTIONS
// at each look-up, so a tool with `env: true` that set HOSTALIASES to a file of its own could send a single-label
// `net` grant (`redis`) to any host (outside break attempt brk-sbx3). A process with `env: true` gets them all
// denied (see processFlags), so it can neither read nor set them.
const PROCESS_CONTROL_PREFIXES = ["LD_", "DYLD_", "DENO_", "RUST_", "MALLOC_", "OTEL_"];
const PROCESS_CONTROL_NAMES = [
  "SSLKEYLOGFILE",
  "GCONV_PATH",
  "GETCONF_DIR",
  "GLIBC_TUNABLES",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "NODE_OPTIONS",
];
const PROCESS_CONTROL_ENV = new RegExp(
  `^(?:${PROCESS_CONTROL_PREFIXES.join("|")})|^(?:${PROCESS_CONTROL_NAMES.join("|")})$`,
);
/**
 * The proxy variables Deno's HTTP clients obey (`fetch`, `Deno.createHttpClient`, Node's `http`). A proxy
 * set through them is checked only against the deny list, never against a `net` host list: a tool granted
 * `net: ["example.com"]` and `HTTP_PROXY` set the variable and sent any request to 127.0.0.1:3995 (red team
 * 8 S5). They are never granted, and a process with `env: true` gets them denied, so it cannot set them.
 */
const PROXY_ENV_NAMES = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "all_proxy",
  "no_proxy",
];
const PROXY_ENV = /^(?:https?|all|no)_proxy$/i;
/** What a process granted `env: true` may not read nor set (`--deny-env` takes `NAME*` for a prefix). */
const ENV_DENIED_TO_ALL = [
  ...PROXY_ENV_NAMES,
  ...PROCESS_CONTROL_NAMES,
  ...PROCESS_CONTROL_PREFIXES.map((prefix) => `${prefix}*`),
];

// A comma would split one entry into several in `--allow-x=a,b`; control characters have no place in
// a host name or path and could hide an entry in logs.
// deno-lint-ignore no-control-regex
const UNSAFE_ENTRY = /[,\u0000-\u001f\u007f]/;

/**
 * Validates a tool's permissions. Relative paths are resolved against the tool's folder.
 *
 * @throws {ToolFailure} `tool_permission_denied` when an entry cannot be expressed as a Deno flag safely.
 */
export function normalizePermissions(
  permissions: ToolPermissions | undefined,
  toolDir: string,
): SandboxPermissions {
  const p = permissions ?? {};
  return {
    net: normalizeGrant("net", p.net, (host) => host),
    read: normalizeGrant("read", p.read, (path) => absolutePath(path, toolDir)),
    write: normalizeGrant("write", p.write, (path) => absolutePath(path, toolDir)),
    env: normalizeGrant("env", p.env, (name) => {
      if (!ENV_NAME.test(name)) throw deny("env", name, "it is not a variable name");
      if (isProcessControlEnv(name)) throw deny("env", name, PROCESS_CONTROL_WHY);
      return name;
    }),
  };
}

function normalizeGrant(
  kind: keyof ToolPermissions,
  value: boolean | string[] | undefined,
  normalize: (entry: string) => string,
): Grant {
  if (value === true) return true;
  if (value === undefined || value === false) return [];
  if (!Array.isArray(value)) throw deny(kind, String(value), "it must be a boolean or a list of strings");
  const entries = value.map((entry) => {
    if (typeof entry !== "string" || entry.trim() === "") {
      throw deny(kind, String(entry), "entries must be non-empty strings");
    }
    if (UNSAFE_ENTRY.test(entry)) throw deny(kind, entry, "it contains a comma or a control character");
    return normalize(entry);
  });
  return [...new Set(entries)].sort();
}

function absolutePath(path: string, toolDir: string): string {
  return isAbsolute(path) ? resolve(path) : resolve(toolDir, path);
}

/** Whether the dynamic loader or Deno reads `name` from a sandboxed process's environment at its start. */
export function isProcessControlEnv(name: string): boolean {
  return PROCESS_CONTROL_ENV.test(name) || PROXY_ENV.test(name);
}

/** Why a process-control name is refused, for every place that refuses one. */
export const PROCESS_CONTROL_WHY =
  "the dynamic loader or Deno reads it (at start, or for every HTTP client: a proxy), outside the sandbox's permissions";

function deny(kind: string, entry: string, why: string): ToolFailure {
  return new ToolFailure(
    "tool_permission_denied",
    `Cannot grant ${kind} permission "${entry}": ${why}`,
    { details: { permission: kind, entry } },
  );
}

/** A stable string identifying a permission set, part of the warm-pool key. */
export function permissionsKey(p: SandboxPermissions): string {
  return JSON.stringify([p.net, p.read, p.write, p.env]);
}

/** Paths a `true` grant must still not reach (`--deny-read`, `--deny-write`). */
export interface Denied {
  read: readonly string[];
  write: readonly string[];
}

/**
 * The `deno run` permission flags of a sandbox process. `loaderReads` are the files the process must read
 * to load the tool's module graph (the graph's files, the worker bootstrap). A worker inherits the
 * process's denials, so a tool granted `read: true` still cannot read a denied path.
 */
export function processFlags(
  p: SandboxPermissions,
  loaderReads: readonly string[],
  denied: Denied = { read: [], write: [] },
): string[] {
  const read: Grant = p.read === true ? true : [...new Set([...loaderReads, ...p.read])];
  return [
    flag("net", p.net),
    flag("read", read),
    flag("write", p.write),
    flag("env", p.env),
    p.env === true ? `--deny-env=${ENV_DENIED_TO_ALL.join(",")}` : undefined,
    denied.read.length ? `--deny-read=${flagList("deny-read", denied.read)}` : undefined,
    denied.write.length ? `--deny-write=${flagList("deny-write", denied.write)}` : undefined,
  ].filter((f): f is string => f !== undefined);
}

function flag(kind: string, grant: Grant): string | undefined {
  if (grant === true) return `--allow-${kind}`;
  // Deno refuses `--allow-x=` with an empty list ("Empty env not allowed"); no grant means no flag.
  return grant.length === 0 ? undefined : `--allow-${kind}=${flagList(`allow-${kind}`, grant)}`;
}

/**
 * A flag's list. Deno 2.9.6 splits it at every comma and has no escape for one (`,,` is refused as an empty
 * entry), so a path holding a comma would become two entries naming other paths: a protected `.env,orig` or
 * an `env_file` named `secrets, prod.env` was not denied at all, and a `read: true` tool read it (outside
 * break attempt brk37). The entries a tool writes are refused at their grant already ({@linkcode
 * normalizePermissions}); the paths the runtime adds (protected files, the module graph, a folder's
 * resolved path) are refused here, before the process exists.
 *
 * @throws {ToolFailure} `tool_permission_denied`, naming the path
 */
function flagList(flagName: string, entries: readonly string[]): string {
  const split = entries.find((entry) => entry.includes(","));
  if (split !== undefined) {
    throw new ToolFailure(
      "tool_permission_denied",
      `the sandbox cannot be started: "${split}" holds a comma, which --${flagName} cannot carry (Deno splits ` +
        "its list at commas, so the path would not be named at all); rename it",
      { details: { flag: flagName, path: split } },
    );
  }
  return entries.join(",");
}

/** The permissions of the worker that evaluates the tool: exactly the tool's grants. */
export function workerPermissions(p: SandboxPermissions): Deno.PermissionOptionsObject {
  const grant = (g: Grant) => (g === true ? true : g.length === 0 ? false : [...g]);
  return {
    net: grant(p.net),
    read: grant(p.read),
    write: grant(p.write),
    env: grant(p.env),
    run: false,
    ffi: false,
    sys: false,
    import: false,
  };
}

/**
 * The environment of a sandbox process: only the call's values whose names the tool may read. Under
 * `env: true`, names the loader or Deno read at start-up are left out (a list naming one is refused).
 */
export function sandboxEnv(
  p: SandboxPermissions,
  env: Record<string, string> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (!env) return out;
  for (const [name, value] of Object.entries(env)) {
    const readable = p.env === true
      ? ENV_NAME.test(name) && !isProcessControlEnv(name)
      : p.env.includes(name);
    if (readable) out[name] = value;
  }
  return out;
}
