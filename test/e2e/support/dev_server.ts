/**
 * `compozy dev` as a real subprocess on a temporary copy of a project: real HTTP on a free port, a managed
 * NATS, the engine and the runtime child. Its stdout (the live log) is collected line by line.
 */
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname!, "../../..");
const MAIN = join(REPO, "main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DevServer {
  url: string;
  /** The temporary project directory. */
  dir: string;
  /** Every stdout line so far. */
  readonly lines: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

/** Copies `fixture` to a temporary directory and starts `compozy dev` on it; resolves once healthy. */
export async function startDev(fixture: string, extraArgs: string[] = []): Promise<DevServer> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-e2e-" });
  await copyDir(fixture, dir);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "dev", "--cwd", dir, "--port", "0", ...extraArgs],
    env: { NO_COLOR: "1", COMPOZY_LOG_LEVEL: "warn" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: REPO,
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let stderr = "";
  (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
      waiters.forEach((w) => w());
    }
  })();
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr = (stderr + chunk).slice(-20_000);
    }
  })();
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
          reject(new Error(`compozy dev exited before printing ${pattern}:\n${lines.join("\n")}\n${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`no line matching ${pattern} after ${timeoutMs} ms:\n${lines.join("\n")}\n${stderr}`),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    const killer = setTimeout(() => {
      if (!exited) child.kill("SIGKILL");
    }, 15_000);
    await status;
    clearTimeout(killer);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    const apiLine = await waitForLine(/^\s+API\s+http:\/\//, 60_000);
    const url = apiLine.trim().split(/\s+/)[1];
    await waitForLine(/^ready in \d+ ms/, 60_000);
    return {
      url,
      dir,
      lines,
      waitForLine,
      fetch: (path, init) => fetch(`${url}${path}`, init),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Runs the CLI (`deno run -A main.ts ...args`) to completion. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", COMPOZY_LOG_LEVEL: "warn", ...env },
    stdin: "null",
    cwd: REPO,
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

export const FIXTURE_PROJECT = join(REPO, "test/e2e/fixtures/project");

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory) await copyDir(source, target);
    else if (entry.isFile) await Deno.copyFile(source, target);
  }
}
