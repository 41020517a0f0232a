/**
 * A call sent to the runtimes is sent again when no runtime holds it any more, and only then
 * (engine/domain/task/runtime_call.ts, pkg/runtime/held_calls.ts). Against a real nats-server: "runtimes" are
 * connections that serve tool commands in the runtimes' queue group; one that dies closes its connection.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { requestRuntimeCall, type RuntimeCallTiming } from "../../engine/domain/task/runtime_call.ts";
import { Bus, callHolderSubject, connectNats, RequestError } from "../../pkg/nats/mod.ts";
import { type ToolExecute, ToolExecuteResultSchema, ToolExecuteSchema } from "../../pkg/pb/mod.ts";
import { HeldCalls } from "../../pkg/runtime/held_calls.ts";
import { startTestNats } from "../support/nats.ts";

/** Short, so that the test is quick; the defaults are 1 s each. */
const TIMING: RuntimeCallTiming = {
  firstAskMs: 200,
  askEveryMs: 200,
  askTimeoutMs: 500,
  goneAfterMs: 200,
  maxVanished: 3,
};

function toolCall(bus: Bus): ToolExecute {
  return create(ToolExecuteSchema, {
    metadata: bus.metadata("run-1"),
    workflow: { id: "wf", execId: "exec-1" },
    task: { id: "a", execId: "task-1" },
    tool: { id: "work", execId: crypto.randomUUID() },
    attempt: 1,
  });
}

/** A runtime: serves tool commands; `answer` false keeps every call running for ever. */
function runtime(nc: NatsConnection, name: string, answer: boolean, received: string[]) {
  const bus = new Bus(nc, { source: name });
  const held = new HeldCalls(nc);
  bus.serve(
    "compozy.*.tool.cmds.*.execute",
    "compozy-runtime",
    ToolExecuteResultSchema,
    (m) =>
      held.hold((m as ToolExecute).tool!.execId, () => {
        received.push(`${name} ${(m as ToolExecute).tool!.execId}`);
        return answer
          ? Promise.resolve(
            create(ToolExecuteResultSchema, { result: { case: "success", value: { durationMs: 1n } } }),
          )
          : new Promise(() => {});
      }),
  );
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "runtime call: sent again to a live runtime when the one running it dies; kept while it is busy",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const nats = await startTestNats();
    const engineNc = await connectNats(nats.url, { name: "engine" });
    const bus = new Bus(engineNc, { source: "engine" });
    const connections: NatsConnection[] = [engineNc];
    const connect = async (name: string) => {
      const nc = await connectNats(nats.url, { name });
      connections.push(nc);
      return nc;
    };
    try {
      await t.step("the runtime running the call dies: the same call goes to the other runtime", async () => {
        const received: string[] = [];
        const dying = await connect("dying");
        runtime(dying, "dying", false, received);
        await dying.flush();
        const message = toolCall(bus);
        const reply = requestRuntimeCall(bus, message, message.tool!.execId, ToolExecuteResultSchema, {
          timeoutMs: 60_000,
          timing: TIMING,
        });
        await until(() => received.length === 1, "the call reached the first runtime");
        const live = await connect("live");
        runtime(live, "live", true, received);
        await live.flush();
        await dying.close(); // Its socket closes, as a kill -9 closes it.
        const result = await reply;
        assert.equal(result.result.case, "success");
        assert.deepEqual(received, [`dying ${message.tool!.execId}`, `live ${message.tool!.execId}`]);
        await live.close();
      });

      await t.step(
        "a runtime too busy to answer in time keeps its call: it is never sent twice",
        async () => {
          const received: string[] = [];
          const busy = await connect("busy");
          const busyBus = new Bus(busy, { source: "busy" });
          const release = Promise.withResolvers<void>();
          busyBus.serve(
            "compozy.*.tool.cmds.*.execute",
            "compozy-runtime",
            ToolExecuteResultSchema,
            async (m) => {
              const callId = (m as ToolExecute).tool!.execId;
              received.push(callId);
              // Holds the call but answers each question after the engine stopped waiting (a starved loop).
              const holder = busy.subscribe(callHolderSubject(callId), {
                callback: (_err, msg) => {
                  setTimeout(() => msg.respond(), TIMING.askTimeoutMs * 2);
                },
              });
              await release.promise;
              holder.unsubscribe();
              return create(ToolExecuteResultSchema, {
                result: { case: "success", value: { durationMs: 1n } },
              });
            },
          );
          await busy.flush();
          const message = toolCall(bus);
          const reply = requestRuntimeCall(bus, message, message.tool!.execId, ToolExecuteResultSchema, {
            timeoutMs: 60_000,
            timing: TIMING,
          });
          // Several rounds of questions, none answered in time.
          await new Promise((r) => setTimeout(r, TIMING.firstAskMs + 6 * TIMING.askTimeoutMs));
          release.resolve();
          assert.equal((await reply).result.case, "success");
          assert.deepEqual(received, [message.tool!.execId], "sent once");
          await busy.close();
        },
      );

      await t.step("a call whose runtime vanishes again and again fails runtime-unavailable", async () => {
        const received: string[] = [];
        const message = toolCall(bus);
        const reply = requestRuntimeCall(bus, message, message.tool!.execId, ToolExecuteResultSchema, {
          timeoutMs: 60_000,
          timing: TIMING,
        });
        for (let i = 0; i < TIMING.maxVanished; i++) {
          const doomed = await connect(`doomed-${i}`);
          let asked = 0;
          new Bus(doomed, { source: "doomed" }).serve(
            "compozy.*.tool.cmds.*.execute",
            "compozy-runtime",
            ToolExecuteResultSchema,
            (m) => {
              received.push((m as ToolExecute).tool!.execId);
              doomed.subscribe(callHolderSubject((m as ToolExecute).tool!.execId), {
                callback: (_err, msg) => {
                  asked++;
                  msg.respond();
                },
              });
              return new Promise(() => {});
            },
          );
          // Dies once the engine knows it held the call (a runtime gone before any question counts as one
          // that never took it: sent again within the call's limit, not counted).
          await until(() => asked > 0, `runtime ${i} was asked about the call`);
          await doomed.close();
        }
        await assert.rejects(reply, (e) => e instanceof RequestError && /vanished 3 times/.test(e.message));
      });
    } finally {
      for (const nc of connections) await nc.close().catch(() => {});
      await nats.stop();
    }
  },
});
