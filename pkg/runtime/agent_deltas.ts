/**
 * Live deltas: the text of each model reply, published as it streams as `AgentDelta` messages on core NATS
 * (`compozy.<run>.agent.live.<agent exec id>.delta`). No stream captures that subject, so deltas are never
 * stored nor replayed: they exist for live views only (SSE with `?deltas=true`, the console, `compozy run`).
 * The reply itself is recorded whole in `agent.model_replied`.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import type { Bus } from "../nats/mod.ts";
import * as pb from "../pb/mod.ts";
import { getLogger } from "../logger/mod.ts";

const log = getLogger(["runtime", "agent"]);

/** A delta longer than this is sent in pieces, so one never nears a NATS message's size limit. */
export const MAX_DELTA_CHARS = 16_384;

/**
 * The `onDelta` of the agent call `message` asks for. Deltas are numbered from 1 per call (`seq`), so a live
 * view can order them and notice a gap. A delta that cannot be published (connection closed) is dropped
 * with a debug log: a live view may miss text, the loop never stops for it.
 */
export function liveDeltas(
  bus: Bus,
  message: pb.AgentExecute,
): (delta: { turn: number; text: string }) => void {
  const ids = { workflow: message.workflow, task: message.task, agent: message.agent };
  const correlationId = message.metadata?.correlationId ?? "";
  let seq = 0;
  return ({ turn, text }) => {
    for (let start = 0; start < text.length; start += MAX_DELTA_CHARS) {
      seq++;
      const piece = text.slice(start, start + MAX_DELTA_CHARS);
      try {
        bus.publishCore(
          create(pb.AgentDeltaSchema, {
            ...ids,
            metadata: bus.metadata(correlationId),
            turn,
            seq,
            text: piece,
          }),
        );
      } catch (error) {
        log.debug("Live delta {seq} of agent call {agent_exec_id} dropped: {error}", {
          seq,
          agent_exec_id: message.agent?.execId,
          error,
        });
      }
    }
  };
}
