/**
 * The sandbox's modules for a compiled `compozy` binary. Sandboxes are run by the `deno` on PATH, which
 * cannot read files inside the binary, so the binary carries bundles of them (cli/sandbox_modules.json,
 * made by `deno task sandbox-bundle`) and writes them to a cache folder at start. A file already there is
 * reused only when its SHA-256 is the expected one; otherwise it is written again, to a temporary name
 * renamed into place, so that a process starting alongside never reads half a file. File names carry the
 * hash, so binaries of different versions share the folder without clashing.
 *
 * The folder is `COMPOZY_CACHE_DIR`, else the user's cache folder (`$XDG_CACHE_HOME` or `~/.cache` on
 * Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows) + `/compozy`; the files go in `sandbox/`.
 *
 * @module
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { configureSandboxModules, type SandboxModules } from "../pkg/runtime/sandbox_modules.ts";
import { CliError } from "./cli_error.ts";

export const CACHE_DIR_ENV = "COMPOZY_CACHE_DIR";

/** The files of the sandbox, by name. */
export type SandboxModuleName = "worker_host.js" | "tool_worker.js" | "lockdown.mjs";

/** What cli/sandbox_modules.json holds. */
export interface SandboxBundle {
  generated: string;
  modules: Record<SandboxModuleName, { sha256: string; source: string }>;
}

/** The user's cache folder for Compozy. */
export function compozyCacheDir(): string {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const explicit = env(CACHE_DIR_ENV);
  if (explicit) return explicit;
  const home = env("HOME");
  const base = Deno.build.os === "windows"
    ? env("LOCALAPPDATA")
    : Deno.build.os === "darwin"
    ? home && join(home, "Library", "Caches")
    : env("XDG_CACHE_HOME") ?? (home && join(home, ".cache"));
  if (!base) {
    throw new CliError("no cache folder for the sandbox's modules: HOME is not set", [
      `Set ${CACHE_DIR_ENV} to a folder this user can write.`,
    ]);
  }
  return join(base, "compozy");
}

export async function sha256Hex(text: string | Uint8Array): Promise<string> {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes (or finds, verified) the bundle's files under `dir` and returns where they are.
 *
 * @throws {CliError} when the bundle does not match its own hashes or the folder cannot be written.
 */
export async function writeSandboxModules(bundle: SandboxBundle, dir: string): Promise<SandboxModules> {
  const paths = {} as Record<SandboxModuleName, string>;
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    for (
      const [name, { sha256, source }] of Object.entries(bundle.modules) as [
        SandboxModuleName,
        SandboxBundle["modules"][SandboxModuleName],
      ][]
    ) {
      paths[name] = await placeModule(dir, name, sha256, source);
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(
      `cannot write the sandbox's modules to ${dir}: ${e instanceof Error ? e.message : String(e)}`,
      [`Set ${CACHE_DIR_ENV} to a folder this user can write.`],
      undefined,
      { cause: e },
    );
  }
  const worker = paths["tool_worker.js"];
  const lockdown = paths["lockdown.mjs"];
  return {
    hostPath: paths["worker_host.js"],
    // The bundle holds everything the host thread imports.
    hostFiles: [paths["worker_host.js"]],
    workerUrl: pathToFileURL(worker).href,
    lockdownUrl: pathToFileURL(lockdown).href,
    workerFiles: [worker, lockdown],
  };
}

async function placeModule(dir: string, name: string, sha256: string, source: string): Promise<string> {
  if (await sha256Hex(source) !== sha256) {
    throw new CliError(`the sandbox's module ${name} in this build does not match its SHA-256`, [
      "The build is damaged: rebuild it after `deno task sandbox-bundle`.",
    ]);
  }
  const dot = name.lastIndexOf(".");
  const path = join(dir, `${name.slice(0, dot)}-${sha256.slice(0, 16)}${name.slice(dot)}`);
  if (await fileSha256(path) === sha256) return path;
  const temporary = `${path}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(temporary, source, { mode: 0o644 });
    await Deno.rename(temporary, path);
  } finally {
    await Deno.remove(temporary).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
  return path;
}

async function fileSha256(path: string): Promise<string | undefined> {
  try {
    return await sha256Hex(await Deno.readFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * For a compiled binary (or its stand-in, `COMPOZY_AS_COMPILED=1`): writes the embedded bundle to the cache
 * folder and makes this process's sandboxes run it.
 */
export async function useCachedSandboxModules(): Promise<SandboxModules> {
  const { default: bundle } = await import("./sandbox_modules.json", { with: { type: "json" } });
  const modules = await writeSandboxModules(bundle as SandboxBundle, join(compozyCacheDir(), "sandbox"));
  configureSandboxModules(modules);
  return modules;
}
