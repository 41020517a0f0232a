/**
 * Compozy as real subprocesses: `compozy dev` on a temporary copy of a project (real HTTP on a free port, a
 * managed NATS, the engine and the runtime child), `compozy start` with a role, and one-shot CLI runs.
 * Output is collected line by line so that tests can wait for what a process prints.
 */
import { dirname, join, resolve } from "node:path";
import type { z } from "zod";
import type { ExecutionStateSchema } from "../../../server/schemas.ts";
import { COMPOZY_DENO_RUN_FLAGS } from "../../support/deno_run.ts";

const REPO = resolve(import.meta.dirname!, "../../..");
const MAIN = join(REPO, "main.ts");

export const FIXTURE_PROJECT = join(REPO, "test/e2e/fixtures/project");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CompozyProcess {
  pid: number;
  /** Every line printed so far, stdout and stderr interleaved. */
  readonly lines: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit status once the process has exited. */
  readonly status: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL after 15 s; resolves once it has exited. */
  stop(): Promise<void>;
  /** SIGKILL to its whole process group (it runs in its own, via setsid), as a crash of everything would. */
  killGroup(): Promise<void>;
  /** Sends `signal` to its whole process group (SIGSTOP freezes it and its children, SIGCONT thaws them). */
  signalGroup(signal: Deno.Signal): void;
  /**
   * SIGINT to its whole process group, as Ctrl-C at a terminal sends it (the managed nats-server and the
   * runtime get it too); SIGKILL to the group after 30 s. Resolves with the exit status.
   */
  interrupt(): Promise<Deno.CommandStatus>;
}

export interface DevServer extends CompozyProcess {
  url: string;
  /** The temporary project directory. */
  dir: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Starts `workflowId` with `input` and waits for its end, as {@link startAndWait} does. */
  run(workflowId: string, input?: unknown, options?: StartAndWaitOptions): Promise<ExecutionStateJson>;
}

/** An execution's state as the API answers it (`ExecutionState` in API.md). */
export type ExecutionStateJson = z.infer<typeof ExecutionStateSchema>;

export interface StartAndWaitOptions {
  /** The `?wait=` duration; 60s unless given. */
  wait?: string;
  /** Headers beside the JSON content type (e.g. an API key). */
  headers?: Record<string, string>;
}

/**
 * `POST {baseUrl}/api/workflows/{workflowId}/executions?wait=…` with `{ input }`, as a user starts a workflow
 * and awaits it: the state it answers with (the final one, or the one of the moment the wait ran out: both are
 * a 200, API.md), or an error holding the answer when it is not a 200 (an unknown workflow, an input its
 * schema refuses, NATS unavailable).
 */
export async function startAndWait(
  baseUrl: string,
  workflowId: string,
  input?: unknown,
  options: StartAndWaitOptions = {},
): Promise<ExecutionStateJson> {
  const response = await fetch(
    `${baseUrl}/api/workflows/${workflowId}/executions?wait=${options.wait ?? "60s"}`,
    {
      method: "POST",
      headers: { "content-type": "application/json", ...options.headers },
      body: JSON.stringify(input === undefined ? {} : { input }),
    },
  );
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`start of ${workflowId} answered ${response.status}, not 200: ${text.slice(0, 2_000)}`);
  }
  return JSON.parse(text);
}

/**
 * Starts `compozy <args>` in its own process group; `denoFlags` go to `deno run` (e.g. `--cpu-prof` in a
 * bench).
 */
export function spawnCompozy(
  args: string[],
  env: Record<string, string> = {},
  denoFlags: string[] = [],
): CompozyProcess {
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), "run", "-A", ...COMPOZY_DENO_RUN_FLAGS, ...denoFlags, MAIN, ...args],
    env: { NO_COLOR: "1", COMPOZY_LOG_LEVEL: "warn", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: REPO,
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
      waiters.forEach((w) => w());
    }
  };
  collect(child.stdout);
  collect(child.stderr);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    waiters.forEach((w) => w());
    return s;
  });

  const waitForLine = (pattern: RegExp, timeoutMs = 30_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) {
          cleanup();
          resolve(found);
        } else if (exited) {
          cleanup();
          reject(new Error(`compozy ${args[0]} exited before printing ${pattern}:\n${lines.join("\n")}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no line matching ${pattern} after ${timeoutMs} ms:\n${lines.join("\n")}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return {
    pid: child.pid,
    lines,
    status,
    waitForLine,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const killer = setTimeout(() => {
        if (!exited) child.kill("SIGKILL");
      }, 15_000);
      await status;
      clearTimeout(killer);
    },
    async killGroup() {
      // setsid made the child the leader of its own group: -pid is that group, not ours.
      Deno.kill(-child.pid, "SIGKILL");
      await status;
    },
    signalGroup(signal: Deno.Signal) {
      Deno.kill(-child.pid, signal);
    },
    async interrupt() {
      Deno.kill(-child.pid, "SIGINT");
      const killer = setTimeout(() => Deno.kill(-child.pid, "SIGKILL"), 30_000);
      try {
        return await status;
      } finally {
        clearTimeout(killer);
      }
    },
  };
}

export interface DevOptions {
  /** A project to copy into a new temporary directory. */
  fixture?: string;
  /** An existing project directory to run instead (e.g. the one of a killed run). */
  dir?: string;
  args?: string[];
  env?: Record<string, string>;
}

/** Starts `compozy dev` and resolves once it says it is ready (NATS, engine and runtime answering). */
export async function startDev(options: DevOptions): Promise<DevServer> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "compozy-e2e-" });
  if (options.fixture) await copyDir(options.fixture, dir);
  const process = spawnCompozy(["dev", "--cwd", dir, "--port", "0", ...(options.args ?? [])], options.env);
  try {
    const apiLine = await process.waitForLine(/^\s+API\s+http:\/\//, 60_000);
    const url = apiLine.trim().split(/\s+/)[1];
    await process.waitForLine(/^ready in \d+ ms/, 60_000);
    return {
      ...process,
      url,
      dir,
      fetch: (path, init) => fetch(`${url}${path}`, init),
      run: (workflowId, input, runOptions) => startAndWait(url, workflowId, input, runOptions),
    };
  } catch (e) {
    await process.stop();
    throw e;
  }
}

/** A project's files: their text by path relative to the project's directory. */
export type ProjectFiles = Record<string, string>;

/** A `compozy dev` on a project written for one test. */
export interface DevProject extends DevServer {
  /** Stops `compozy dev` and removes the project's directory. */
  close(): Promise<void>;
}

/**
 * Writes `files` into a new temporary directory (given as a function of it when a file names a path in it),
 * making their folders, and starts `compozy dev` on it with `env`. The directory is removed by `close()`, or
 * here when the start fails.
 */
export async function startDevOn(
  files: ProjectFiles | ((dir: string) => ProjectFiles),
  env?: Record<string, string>,
): Promise<DevProject> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-e2e-" });
  const removeDir = () => Deno.remove(dir, { recursive: true });
  try {
    for (const [path, text] of Object.entries(typeof files === "function" ? files(dir) : files)) {
      await Deno.mkdir(dirname(join(dir, path)), { recursive: true });
      await Deno.writeTextFile(join(dir, path), text);
    }
    const dev = await startDev({ dir, env });
    return { ...dev, close: () => dev.stop().then(removeDir) };
  } catch (e) {
    await removeDir();
    throw e;
  }
}

/** Runs the CLI (`deno run -A main.ts ...args`) to completion. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...COMPOZY_DENO_RUN_FLAGS, MAIN, ...args],
    env: { NO_COLOR: "1", COMPOZY_LOG_LEVEL: "warn", ...env },
    stdin: "null",
    cwd: REPO,
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: withoutDenoLockNotice(decode(out.stderr)) };
}

/**
 * `deno run` says "Blocking waiting for file lock on node_modules directory" on stderr, before the CLI runs,
 * when another deno of the suite holds that lock: the launcher's line, not the CLI's (it was the first line
 * cli_project_dir read in a full run).
 */
function withoutDenoLockNotice(stderr: string): string {
  return stderr.replace(/^Blocking waiting for file lock on [^\n]*\n/gm, "");
}

/** A temporary copy of a project directory. */
export async function copyProject(fixture: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-e2e-" });
  await copyDir(fixture, dir);
  return dir;
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory) await copyDir(source, target);
    else if (entry.isFile) await Deno.copyFile(source, target);
  }
}
