/** The live view of `compozy dev` on a real nats-server: what reaches its connection, and the lines it prints. */

import assert from "node:assert/strict";
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { encode } from "../pkg/nats/codec.ts";
import { connectNats } from "../pkg/nats/connection.ts";
import { buildSubject } from "../pkg/nats/subjects.ts";
import {
  TaskDispatchedSchema,
  TaskExecutionStartedSchema,
  TaskExecutionSuccessSchema,
  ToolExecutionStartedSchema,
  ToolExecutionSuccessSchema,
  WorkflowExecutionStartedSchema,
  WorkflowExecutionSuccessSchema,
} from "../pkg/pb/mod.ts";
import { collectEngineMetrics } from "../server/event_metrics.ts";
import { MetricsRegistry } from "../server/metrics.ts";
import { startTestNats } from "../test/support/nats.ts";
import { startLiveLog } from "./live_log.ts";
import { paintFor } from "./terminal.ts";

const execId = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0001";
const taskExecId = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0002";
const toolExecId = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0003";

Deno.test("the live view: only the events it shows reach its connection", async () => {
  const nats = await startTestNats();
  const viewed = await connectNats(nats.url, { name: "live-view" });
  const publisher = await connectNats(nats.url, { name: "engine" });
  const written: string[] = [];
  const live = startLiveLog(viewed, paintFor({ isTerminal: () => false }), (text) => written.push(text));
  try {
    await viewed.flush();
    const metadata = { correlationId: execId, timeMs: Date.UTC(2026, 0, 1, 10, 0, 0) };
    const send = <S extends DescMessage>(
      schema: S,
      component: "workflow" | "task" | "tool",
      id: string,
      type: string,
      fields: Record<string, unknown>,
      atMs = 0,
    ) => {
      const message = create(schema, {
        metadata: { correlationId: execId, time: timestampFromMs(metadata.timeMs + atMs) },
        workflow: { id: "weather", execId },
        ...fields,
      } as never) as MessageShape<S>;
      publisher.publish(
        buildSubject({ correlationId: execId, component, kind: "evts", id, type }),
        encode(schema, message),
      );
    };
    const task = { id: "get-weather", execId: taskExecId };
    const tool = { id: "weather_tool", execId: toolExecId };
    // A tool step's five events, then the workflow's end.
    send(TaskDispatchedSchema, "task", taskExecId, "dispatched", { task });
    send(TaskExecutionStartedSchema, "task", taskExecId, "started", { task, attempt: 1 });
    send(ToolExecutionStartedSchema, "tool", toolExecId, "started", { task, tool });
    send(ToolExecutionSuccessSchema, "tool", toolExecId, "success", { task, tool, durationMs: 12n }, 12);
    send(TaskExecutionSuccessSchema, "task", taskExecId, "success", { task }, 15);
    send(WorkflowExecutionSuccessSchema, "workflow", execId, "success", {}, 20);
    await publisher.flush();
    await live.whenEnded(execId, 30_000);
    const lines = written.join("\n").split("\n");
    assert.deepEqual(lines, [
      "10:00:00.012 weather …ffff0001     ↳ tool weather_tool ✓ in 12ms",
      "10:00:00.015 weather …ffff0001   get-weather      ✓ in 15ms",
      "10:00:00.020 weather …ffff0001 ✓ SUCCESS",
    ]);
    // The task's dispatch and the tool's start give no line: the server does not send them here.
    assert.equal(viewed.stats().inMsgs, 4);
  } finally {
    live.stop();
    await publisher.close();
    await viewed.close();
    await nats.stop();
  }
});

Deno.test("the live view and the API's metrics on one connection (compozy dev): each event reaches it once", async () => {
  const nats = await startTestNats();
  const dev = await connectNats(nats.url, { name: "dev" });
  const publisher = await connectNats(nats.url, { name: "engine" });
  const registry = new MetricsRegistry();
  const metrics = collectEngineMetrics(dev, registry);
  const written: string[] = [];
  const live = startLiveLog(dev, paintFor({ isTerminal: () => false }), (text) => written.push(text));
  try {
    await dev.flush();
    const before = dev.stats().inMsgs;
    const send = <S extends DescMessage>(
      schema: S,
      component: "workflow" | "task",
      id: string,
      type: string,
    ) => {
      const message = create(schema, {
        metadata: { correlationId: execId, time: timestampFromMs(Date.UTC(2026, 0, 1, 10, 0, 0)) },
        workflow: { id: "weather", execId },
        task: { id: "get-weather", execId: taskExecId },
      } as never) as MessageShape<S>;
      publisher.publish(
        buildSubject({ correlationId: execId, component, kind: "evts", id, type }),
        encode(schema, message),
      );
    };
    send(WorkflowExecutionStartedSchema, "workflow", execId, "started");
    send(TaskDispatchedSchema, "task", taskExecId, "dispatched");
    send(TaskExecutionStartedSchema, "task", taskExecId, "started");
    send(TaskExecutionSuccessSchema, "task", taskExecId, "success");
    send(WorkflowExecutionSuccessSchema, "workflow", execId, "success");
    await publisher.flush();
    await live.whenEnded(execId, 30_000);
    await dev.flush();
    // Both saw every event they take: the view its lines, the metrics their counts and the task's duration.
    assert.equal(written.join("\n").split("\n").length, 3, written.join("\n"));
    // Four messages, not nine: no second copy of what both take, and no dispatch (neither reads it). Counted
    // before the scrape, whose reads of JetStream get answers on this connection too.
    assert.equal(dev.stats().inMsgs - before, 4);
    const text = await registry.render();
    assert.match(text, /^compozy_workflow_executions_total\{status="started"\} 1$/m);
    assert.match(text, /^compozy_workflow_executions_total\{status="success"\} 1$/m);
    assert.match(text, /^compozy_task_executions_total\{status="success"\} 1$/m);
    assert.match(text, /^compozy_task_duration_seconds_count\{status="success"\} 1$/m);
  } finally {
    live.stop();
    metrics.stop();
    await publisher.close();
    await dev.close();
    await nats.stop();
  }
});
