import { SubjectError } from "./errors.ts";

/** The components that own subjects. */
export const COMPONENTS = ["workflow", "task", "agent", "tool"] as const;
export type Component = typeof COMPONENTS[number];

/**
 * Log records may also come from a process outside any entity (correlation id `system`), so the log subjects
 * accept the process roles as components too.
 */
export const LOG_COMPONENTS = [...COMPONENTS, "engine", "runtime", "api"] as const;
export type LogComponent = typeof LOG_COMPONENTS[number];

/**
 * What a message on a subject is: a command, a state event, a log record, or a live update. Live updates
 * (`live`: an agent's text as the model streams it) travel on core NATS only: no stream captures them, so
 * they are never stored in the history (docs/api.md, "Live deltas").
 */
export const KINDS = ["cmds", "evts", "logs", "live"] as const;
export type Kind = typeof KINDS[number];

export const COMMAND_TYPES = ["trigger", "execute", "cancel", "pause", "resume", "signal"] as const;
export type CommandType = typeof COMMAND_TYPES[number];

export const EVENT_TYPES = [
  "dispatched",
  "started",
  "waiting_started",
  "waiting_ended",
  "waiting_timed_out",
  "retry_scheduled",
  "paused",
  "resumed",
  "success",
  "failed",
  "canceled",
  "timed_out",
  // A new lease holder's fence (workflow events only).
  "taken_over",
  // The turns of an agent loop (agent events only).
  "model_replied",
  "tool_call_ended",
] as const;
export type EventType = typeof EVENT_TYPES[number];

/** Live update types (agent only): `delta`, a piece of a model reply's text. */
export const LIVE_TYPES = ["delta"] as const;
export type LiveType = typeof LIVE_TYPES[number];

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevelToken = typeof LOG_LEVELS[number];

/** The correlation id of log records emitted outside any run. */
export const SYSTEM_CORRELATION_ID = "system";

/** The parts of `compozy.<correlationId>.<component>.<kind>.<id>.<type>`. */
export interface SubjectParts {
  correlationId: string;
  component: Component | LogComponent;
  kind: Kind;
  id: string;
  type: string;
}

const ROOT = "compozy";
const FORBIDDEN = /[.*>\s]/u;

/**
 * Checks one subject token: not empty, no `.`, `*`, `>` or white space.
 *
 * @example
 * ```ts
 * assertToken("exec id", "0193f0a4-7b3c-7d2e-9a41-6c0f3b2a1e55"); // ok
 * assertToken("task id", "get weather"); // throws SubjectError
 * ```
 */
export function assertToken(name: string, token: string): void {
  if (typeof token !== "string" || token.length === 0) {
    throw new SubjectError(`Invalid ${name}: a subject token cannot be empty`, undefined, token);
  }
  const bad = FORBIDDEN.exec(token);
  if (bad) {
    const shown = /\s/u.test(bad[0]) ? "white space" : `'${bad[0]}'`;
    throw new SubjectError(
      `Invalid ${name} '${token}': a subject token cannot contain ${shown}`,
      undefined,
      token,
    );
  }
}

function assertOneOf<T extends string>(
  name: string,
  value: string,
  allowed: readonly T[],
): asserts value is T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new SubjectError(
      `Invalid ${name} '${value}': expected one of ${allowed.join(", ")}`,
      undefined,
      value,
    );
  }
}

function componentsFor(kind: Kind): readonly (Component | LogComponent)[] {
  return kind === "logs" ? LOG_COMPONENTS : COMPONENTS;
}

function allowedTypes(kind: Kind): readonly string[] {
  if (kind === "cmds") return COMMAND_TYPES;
  if (kind === "evts") return EVENT_TYPES;
  if (kind === "live") return LIVE_TYPES;
  return LOG_LEVELS;
}

/**
 * Builds `compozy.<correlationId>.<component>.<kind>.<id>.<type>`, validating every token.
 *
 * @example
 * ```ts
 * buildSubject({ correlationId: execId, component: "task", kind: "evts", id: taskExecId, type: "success" });
 * ```
 */
export function buildSubject(parts: SubjectParts): string {
  assertToken("correlation id", parts.correlationId);
  assertOneOf("kind", parts.kind, KINDS);
  assertOneOf("component", parts.component, componentsFor(parts.kind));
  assertToken("id", parts.id);
  assertToken("type", parts.type);
  assertOneOf(`${parts.kind} type`, parts.type, allowedTypes(parts.kind));
  return `${ROOT}.${parts.correlationId}.${parts.component}.${parts.kind}.${parts.id}.${parts.type}`;
}

/** Parses a subject built by {@link buildSubject}; throws SubjectError naming what is wrong. */
export function parseSubject(subject: string): SubjectParts {
  const tokens = subject.split(".");
  if (tokens.length !== 6 || tokens[0] !== ROOT) {
    throw new SubjectError(
      `Invalid subject '${subject}': expected compozy.<correlation_id>.<component>.<kind>.<id>.<type>`,
      subject,
    );
  }
  const [, correlationId, component, kind, id, type] = tokens;
  try {
    assertToken("correlation id", correlationId);
    assertOneOf("kind", kind, KINDS);
    assertOneOf("component", component, componentsFor(kind));
    assertToken("id", id);
    assertOneOf(`${kind} type`, type, allowedTypes(kind));
  } catch (e) {
    if (e instanceof SubjectError) {
      throw new SubjectError(`${e.message} in subject '${subject}'`, subject, e.token);
    }
    throw e;
  }
  return { correlationId, component, kind, id, type };
}

/** A subscription filter over subjects; omitted parts become `*`. */
export function subjectFilter(parts: Partial<SubjectParts>): string {
  const token = (name: string, v: string | undefined) => {
    if (v === undefined) return "*";
    assertToken(name, v);
    return v;
  };
  return [
    ROOT,
    token("correlation id", parts.correlationId),
    token("component", parts.component),
    token("kind", parts.kind),
    token("id", parts.id),
    token("type", parts.type),
  ].join(".");
}

/** `compozy.dlq.<component>.<kind>`: where undecodable or poisoned messages go, with the reason in a header. */
export function deadLetterSubject(component: string, kind: string): string {
  assertToken("component", component);
  assertToken("kind", kind);
  return `${ROOT}.dlq.${component}.${kind}`;
}

/**
 * The core subject the runtime running call `callId` (a tool's or an agent's `execId`, a UUID: one token)
 * answers on while it runs it: engines ask it to learn that the runtime holding a call is gone
 * (pkg/runtime/held_calls.ts, engine/domain/task/runtime_call.ts).
 */
export function callHolderSubject(callId: string): string {
  return `compozy.runtime.calls.${callId}`;
}
