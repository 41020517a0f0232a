/**
 * The runtime's settings from the environment, read once: by the runtime at start, and by a `compozy dev` or
 * `compozy start` that runs one, before anything starts, so that a bad value is said once with its name (the
 * runtime child crash-looped on it with a stack trace while `dev` said ready: outside break attempt breaker2,
 * D4).
 *
 * @module
 */
import { integerFromEnv, positiveMsFromEnv } from "../utils/env_number.ts";
import { MIN_MAX_DESCRIPTORS } from "./descriptor_limit.ts";
import { MIN_MAX_FILE_BYTES } from "./kernel_limits.ts";

export interface RuntimeSettings {
  /**
   * COMPOZY_SANDBOX_START_TIMEOUT_MS: how long a sandbox may take to start (default 10 s), for hosts so loaded
   * that a cold start (SES lockdown, module load) takes longer.
   */
  sandboxStartTimeoutMs?: number;
  /**
   * COMPOZY_SANDBOX_MAX_DESCRIPTORS: the file descriptors each sandbox process may hold (default 128, at least
   * 64), which bounds the kernel socket memory a tool can hold (see descriptor_limit.ts).
   */
  sandboxMaxDescriptors?: number;
  /**
   * COMPOZY_SANDBOX_MAX_FILE_BYTES: the most bytes a file written by a tool (or a script MCP server) may hold
   * (`RLIMIT_FSIZE`; default 256 MiB, at least 1 MiB; see kernel_limits.ts).
   */
  sandboxMaxFileBytes?: number;
  /**
   * COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES: the most bytes of files one call of a tool may write, in all (default
   * 1 GiB, at least 1 MiB; see memory_watch.ts).
   */
  sandboxMaxCallWriteBytes?: number;
  /**
   * COMPOZY_AGENT_TURN_LEASE_MS: how long an agent turn claimed by a runner that stopped renewing the claim
   * (its runtime died) stays its own before another runtime running the same task takes it over (default
   * 15 s, see agent_turn_fence.ts). Shorter, a loop whose runtime died goes on sooner; a runtime whose event
   * loop stalls for longer than the lease loses its turn and that turn is asked twice.
   */
  agentTurnLeaseMs?: number;
}

/**
 * COMPOZY_SANDBOX_START_TIMEOUT_MS, read by the runtime and by engines (how long they wait for a call's answer
 * covers the wait for a sandbox). @throws {EnvSettingError} for a bad value.
 */
export function sandboxStartTimeoutMsFromEnv(): number | undefined {
  return positiveMsFromEnv("COMPOZY_SANDBOX_START_TIMEOUT_MS");
}

/** @throws {EnvSettingError} naming the variable, for a value that is not what the setting needs. */
export function runtimeSettingsFromEnv(): RuntimeSettings {
  return {
    sandboxStartTimeoutMs: sandboxStartTimeoutMsFromEnv(),
    sandboxMaxDescriptors: integerFromEnv("COMPOZY_SANDBOX_MAX_DESCRIPTORS", MIN_MAX_DESCRIPTORS),
    sandboxMaxFileBytes: sandboxMaxFileBytesFromEnv(),
    sandboxMaxCallWriteBytes: integerFromEnv("COMPOZY_SANDBOX_MAX_CALL_WRITE_BYTES", MIN_MAX_FILE_BYTES),
    agentTurnLeaseMs: positiveMsFromEnv("COMPOZY_AGENT_TURN_LEASE_MS"),
  };
}

/**
 * COMPOZY_SANDBOX_MAX_FILE_BYTES, read by the runtime and, for a script MCP server, when its command is made.
 * @throws {EnvSettingError} for a bad value.
 */
export function sandboxMaxFileBytesFromEnv(): number | undefined {
  return integerFromEnv("COMPOZY_SANDBOX_MAX_FILE_BYTES", MIN_MAX_FILE_BYTES);
}
