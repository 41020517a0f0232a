/**
 * Names the failure of a call from the facts a sandbox reported (what the tool threw, how the process
 * died). The one place where sandbox outcomes become {@linkcode ToolFailure}s.
 *
 * @module
 */
import type { SandboxError } from "./protocol.ts";
import type { Death } from "./sandbox_process.ts";
import { ToolFailure } from "./tool_failure.ts";

/** What the messages need to say about the call. */
export interface FailureContext {
  /** Absent for a sandbox that failed to start: processes are shared by every tool id of a module. */
  toolId?: string;
  executePath: string;
  timeoutMs: number;
  heapLimitMb: number;
  maxOutputBytes: number;
  /** The most bytes a file the tool writes may hold (kernel_limits.ts). */
  maxFileBytes: number;
  /** The most bytes of files one call may write (memory_watch.ts). */
  maxCallWriteBytes: number;
  /** Threads a sandbox may keep runnable at once (memory_watch.ts). */
  maxRunnableThreads: number;
}

/**
 * A write past the file size bound (`EFBIG`), as Deno ("File too large (os error 27)") and Node's API
 * ("EFBIG: file too large") word it.
 */
const FILE_TOO_LARGE = /\(os error 27\)|\bEFBIG\b/;

const REFUSED_IMPORT = /Requires read access to|--no-remote|--no-npm|remote specifier|npm specifiers/;

/**
 * What Deno prints before it ends a process, with {@linkcode UNSTABLE_API_EXIT_CODE}, whose code reached an
 * API behind an unstable flag the process lacks (Deno 2.9.6): the API and the flag.
 */
const UNSTABLE_API = /Unstable API '([^'\n]{1,200})'\. The `(--unstable-[a-z-]{1,40})` flag must be provided/;
const UNSTABLE_API_EXIT_CODE = 70;

/** The tool threw, returned unusable output, or its module could not be loaded. */
export function failureFromError(ctx: FailureContext, error: SandboxError): ToolFailure {
  const tool = toolName(ctx);
  switch (error.kind) {
    case "output_invalid":
      return new ToolFailure("tool_output_invalid", `${tool} returned invalid output: ${error.message}`);
    case "output_too_large":
      if (error.bytes === undefined) {
        return new ToolFailure(
          "tool_output_too_large",
          `${tool} returned output over a limit: ${error.message}`,
        );
      }
      return new ToolFailure(
        "tool_output_too_large",
        `${tool} returned ${error.bytes} bytes of output, over the limit of ${ctx.maxOutputBytes}`,
        { details: { bytes: error.bytes, limit: ctx.maxOutputBytes } },
      );
    case "module_invalid":
      return moduleFailure(ctx, error);
    case "exit":
      return new ToolFailure("tool_crashed", `${tool} ended its sandbox: ${error.message}`, {
        details: { exitCode: error.exitCode },
      });
    case "threw":
      return thrownFailure(ctx, error);
  }
}

function thrownFailure(ctx: FailureContext, error: SandboxError): ToolFailure {
  const tool = toolName(ctx);
  const cause = toError(error);
  if (error.permission) {
    const message = withSandboxAdvice(error.message);
    return new ToolFailure("tool_permission_denied", `${tool} was denied a permission: ${message}`, {
      cause,
      details: { name: error.name },
    });
  }
  if (error.name === "RangeError" && /allocation failed/i.test(error.message)) {
    return new ToolFailure("tool_memory_exceeded", `${tool} ran out of memory: ${error.message}`, {
      cause,
      details: { name: error.name },
    });
  }
  if (FILE_TOO_LARGE.test(error.message)) {
    return new ToolFailure(
      "tool_threw",
      `${tool} wrote a file past the sandbox's bound of ${ctx.maxFileBytes} bytes per file ` +
        `(COMPOZY_SANDBOX_MAX_FILE_BYTES; the file keeps the bytes up to it): ${error.name}: ${error.message}`,
      { cause, details: { name: error.name, maxFileBytes: ctx.maxFileBytes } },
    );
  }
  if (error.nonError) {
    return new ToolFailure("tool_threw", `${tool} threw a non-Error value: ${error.message}`, {
      cause,
      details: { thrown: error.thrown },
    });
  }
  return new ToolFailure("tool_threw", `${tool} threw ${error.name}: ${error.message}`, {
    cause,
    details: { name: error.name },
  });
}

/** The kinds of access a tool's `permissions` can grant (engine/domain/tool/schema.ts). */
const GRANTABLE = new Set(["net", "read", "write", "env"]);

/**
 * Deno's advice in a permission error ("run again with the --allow-env flag") speaks to whoever runs `deno`;
 * a tool's author cannot pass flags, and may only ask for access in the tool's `permissions`. Other kinds of
 * access (run, sys, ffi) no tool sandbox ever has.
 */
export function withSandboxAdvice(message: string): string {
  return message.replace(
    /, run again with the --allow-([a-z]+) flag$/,
    (_, kind: string) =>
      GRANTABLE.has(kind)
        ? `: the tool's permissions.${kind} does not grant it, or the sandbox refuses it to every tool ` +
          "(docs/runtime-sandbox.md)"
        : `: a tool sandbox never has ${kind} access (docs/runtime-sandbox.md)`,
  );
}

function moduleFailure(ctx: FailureContext, error: SandboxError): ToolFailure {
  const message = stripAnsi(error.message);
  const code = REFUSED_IMPORT.test(message) ? "tool_import_refused" : "tool_module_invalid";
  return new ToolFailure(code, `Tool module ${ctx.executePath} could not be loaded: ${message}`, {
    details: { executePath: ctx.executePath },
  });
}

/**
 * The sandbox process died during the call, or before its module was loaded. A process that reported
 * running out of memory on its stderr failed for memory, whatever else it did on the way down (a half
 * written frame, a crash signal); only a kill by the runtime for another reason names the death otherwise.
 */
export function failureFromDeath(ctx: FailureContext, death: Death): ToolFailure {
  const tool = toolName(ctx);
  const details = { exitCode: death.exitCode, signal: death.signal, stderr: death.stderr || undefined };
  if (death.outOfMemory && (death.reason === "crash" || death.reason === "protocol")) {
    return new ToolFailure(
      "tool_memory_exceeded",
      `${tool} ran out of memory (heap limit ${ctx.heapLimitMb} MB)`,
      { details: { ...details, heapLimitMb: ctx.heapLimitMb } },
    );
  }
  switch (death.reason) {
    case "timeout":
      return new ToolFailure("tool_timeout", `${tool} timed out after ${ctx.timeoutMs} ms`, {
        details: { timeoutMs: ctx.timeoutMs },
      });
    case "memory":
      return new ToolFailure("tool_memory_exceeded", `${tool} was killed: ${death.message}`);
    case "writes":
      return new ToolFailure("tool_writes_exceeded", `${tool} was killed: ${death.message}`, {
        details: { maxCallWriteBytes: ctx.maxCallWriteBytes },
      });
    case "threads":
      return new ToolFailure("tool_cpu_exceeded", `${tool} was killed: ${death.message}`, {
        details: { maxRunnableThreads: ctx.maxRunnableThreads },
      });
    case "canceled":
      return new ToolFailure(
        "tool_canceled",
        `${tool} was stopped: ${death.message ?? "the call was canceled"}`,
      );
    case "exit":
      return failureFromError(ctx, death.error!);
    case "protocol":
      return new ToolFailure("tool_crashed", `${tool} broke the sandbox protocol: ${death.message}`, {
        details,
      });
    case "closed":
      return new ToolFailure("tool_crashed", `${tool} was stopped: the tool runner was closed`);
    case "stale":
      return new ToolFailure(
        "tool_crashed",
        `${tool} found no sandbox fit for the call: ${
          death.message ?? "each was left busy by an earlier call"
        }`,
        { details },
      );
    case "crash": {
      if (death.error?.kind === "module_invalid") return moduleFailure(ctx, death.error);
      // The sandbox ignores SIGXFSZ (kernel_limits.ts), but a tool that adds a signal listener for it and
      // removes it has Deno put the default back, which ends the process at the next write past the bound.
      if (death.signal === "SIGXFSZ") {
        return new ToolFailure(
          "tool_crashed",
          `${tool} wrote a file past the sandbox's bound of ${ctx.maxFileBytes} bytes per file ` +
            "(COMPOZY_SANDBOX_MAX_FILE_BYTES; the file keeps the bytes up to it): the kernel ended its " +
            "process (SIGXFSZ)",
          { details: { ...details, maxFileBytes: ctx.maxFileBytes } },
        );
      }
      // Not a crash: the same call ends the same way, so it is refused like a permission, and not retried.
      const unstable = death.exitCode === UNSTABLE_API_EXIT_CODE ? UNSTABLE_API.exec(death.stderr) : null;
      if (unstable !== null) {
        const [, api, flag] = unstable;
        return new ToolFailure(
          "tool_permission_denied",
          `${tool} called ${api}, an unstable Deno API (${flag}) that no sandbox is given: Deno ended its process`,
          { details: { ...details, api, flag } },
        );
      }
      return new ToolFailure(
        "tool_crashed",
        `${tool} crashed (exit code ${death.exitCode}, signal ${death.signal ?? "none"})`,
        { details },
      );
    }
  }
}

function toolName(ctx: FailureContext): string {
  return ctx.toolId === undefined ? `Tool module ${ctx.executePath}` : `Tool "${ctx.toolId}"`;
}

/** Rebuilds the tool's error (with its cause chain) as the `cause` of the failure. */
function toError(error: SandboxError): Error {
  const e = new Error(error.message, error.cause ? { cause: toError(error.cause) } : undefined);
  e.name = error.name;
  if (error.stack !== undefined) e.stack = error.stack;
  return e;
}

function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, "");
}
