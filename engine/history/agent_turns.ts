/**
 * The turns of one agent task's loop as its history holds them (`agent.model_replied`,
 * `agent.tool_call_ended`), for the `AgentExecute` of a re-run: the runtime replays them instead of asking
 * the model or running the tools again (pkg/runtime/agent/turn_journal.ts).
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { decodeBySubject, lastSequenceOf, readStream, STREAMS } from "../../pkg/nats/mod.ts";
import type * as pb from "../../pkg/pb/mod.ts";

export interface RecordedAgentTurns {
  replies: pb.AgentModelReplied[];
  toolCalls: pb.AgentToolCallEnded[];
}

/**
 * Reads the turns recorded for task execution `taskExecId` of run `correlationId`, in stream order (the
 * runtime keeps the first of a turn recorded twice). Reads the run's agent events only, from the run's start.
 */
export async function readAgentTurns(
  js: JetStreamClient,
  correlationId: string,
  taskExecId: string,
): Promise<RecordedAgentTurns> {
  const fromSeq = await lastSequenceOf(
    js,
    STREAMS.events,
    `compozy.${correlationId}.workflow.evts.${correlationId}.started`,
  );
  const turns: RecordedAgentTurns = { replies: [], toolCalls: [] };
  for (
    const msg of await readStream(js, STREAMS.events, `compozy.${correlationId}.agent.evts.*.*`, { fromSeq })
  ) {
    const type = msg.subject.slice(msg.subject.lastIndexOf(".") + 1);
    if (type !== "model_replied" && type !== "tool_call_ended") continue;
    const event = decodeBySubject(msg.subject, msg.data) as pb.AgentModelReplied | pb.AgentToolCallEnded;
    if (event.task?.execId !== taskExecId) continue;
    if (event.$typeName === "compozy.v1.AgentModelReplied") turns.replies.push(event);
    else turns.toolCalls.push(event);
  }
  return turns;
}
