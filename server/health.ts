/**
 * Readiness: the API is healthy only when NATS is connected and an engine and a runtime answer a probe.
 * The probe is a core NATS request on `compozy.health.engine` / `compozy.health.runtime`; any reply counts
 * (a JSON `{"status": "...", "detail": "..."}` reply is shown as it is; any other JSON object, such as the
 * engine's `{"ok": true, "instance": "..."}`, becomes the detail as JSON, not as JSON in a string), silence or an
 * error reply does not.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { ERROR_REPLY_HEADER } from "../pkg/nats/bus.ts";
import type { NatsLink } from "./nats_link.ts";

export interface ComponentHealth {
  status: "ok" | "unavailable";
  /** What the part says about itself: a sentence, or the fields of its JSON reply. */
  detail: string | Record<string, unknown>;
}

export interface HealthReport {
  status: "ok" | "unavailable";
  components: Record<string, ComponentHealth>;
}

export interface HealthCheck {
  check(): Promise<HealthReport>;
}

/** The subjects the engine and the runtime answer health probes on. */
export const HEALTH_SUBJECTS = {
  engine: "compozy.health.engine",
  runtime: "compozy.health.runtime",
} as const;

/** Probes NATS itself, then the engine and the runtime in parallel, each with `timeoutMs` (default 1 s). */
export function natsHealthCheck(nc: NatsConnection, link: NatsLink, timeoutMs = 1_000): HealthCheck {
  return {
    async check() {
      const nats = natsStatus(nc, link);
      const components: Record<string, ComponentHealth> = { nats };
      const probes = Object.entries(HEALTH_SUBJECTS).map(async ([name, subject]) => {
        components[name] = nats.status === "ok"
          ? await probe(nc, subject, timeoutMs)
          : { status: "unavailable", detail: "NATS is not connected" };
      });
      await Promise.all(probes);
      return summarise(components);
    },
  };
}

/** Combines component states: healthy only when every one is. */
export function summarise(components: Record<string, ComponentHealth>): HealthReport {
  const ok = Object.values(components).every((c) => c.status === "ok");
  return { status: ok ? "ok" : "unavailable", components };
}

function natsStatus(nc: NatsConnection, link: NatsLink): ComponentHealth {
  if (!link.connected) return { status: "unavailable", detail: link.detail };
  if (nc.isDraining()) return { status: "unavailable", detail: "draining" };
  return { status: "ok", detail: nc.info ? `${nc.info.server_name} ${nc.info.version}` : "connected" };
}

async function probe(nc: NatsConnection, subject: string, timeoutMs: number): Promise<ComponentHealth> {
  try {
    const reply = await nc.request(subject, new Uint8Array(), { timeout: timeoutMs });
    const refused = reply.headers?.get(ERROR_REPLY_HEADER);
    if (refused) return { status: "unavailable", detail: refused };
    return parseReply(reply.data);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return { status: "unavailable", detail: `no answer on ${subject}: ${reason}` };
  }
}

function parseReply(data: Uint8Array): ComponentHealth {
  const text = new TextDecoder().decode(data);
  try {
    const parsed = JSON.parse(text) as { status?: unknown; detail?: unknown };
    const status = parsed.status === "unavailable" ? "unavailable" : "ok";
    if (typeof parsed.detail === "string") return { status, detail: parsed.detail };
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { status, detail: text };
    }
    const { status: _status, ...fields } = parsed as Record<string, unknown>;
    return { status, detail: fields };
  } catch {
    return { status: "ok", detail: text || "answered" };
  }
}
