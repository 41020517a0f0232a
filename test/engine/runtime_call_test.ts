/**
 * A call sent to the runtimes is sent again when no runtime holds it any more, and only then
 * (engine/domain/task/runtime_call.ts, pkg/runtime/held_calls.ts). Against a real nats-server: "runtimes" are
 * connections that serve tool commands in the runtimes' queue group; one that dies closes its connection, one
 * that dies with its socket open (a frozen process) keeps it and stops answering.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { requestRuntimeCall, type RuntimeCallTiming } from "../../engine/domain/task/runtime_call.ts";
import { Bus, callHolderSubject, connectNats, RequestError } from "../../pkg/nats/mod.ts";
import { type ToolExecute, ToolExecuteResultSchema, ToolExecuteSchema } from "../../pkg/pb/mod.ts";
import { HeldCalls } from "../../pkg/runtime/held_calls.ts";
import { startTestNats } from "../support/nats.ts";

/**
 * Short, so that the test is quick; the defaults are 1 s each (10 s of silence). The silence allowed is longer
 * than the busy runtime's below (3.2 s), which must keep its call.
 */
const TIMING: RuntimeCallTiming = {
  firstAskMs: 200,
  askEveryMs: 200,
  askTimeoutMs: 500,
  goneAfterMs: 200,
  silentAfterMs: 5_000,
  maxVanished: 3,
};

/** For the holders that fall silent: 1 s of silence is a runtime gone. */
const SILENT_TIMING: RuntimeCallTiming = { ...TIMING, silentAfterMs: 1_000 };

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

/** `promise`, or a rejection naming `what` once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not seen within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
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
        "a runtime that dies with its socket open (answers no more questions): the same call goes to the other runtime once it has been silent for silentAfterMs",
        async () => {
          const received: string[] = [];
          const frozen = await connect("frozen");
          let answering = true;
          let answered = 0;
          const receivedAt: number[] = [];
          new Bus(frozen, { source: "frozen" }).serve(
            "compozy.*.tool.cmds.*.execute",
            "compozy-runtime",
            ToolExecuteResultSchema,
            (m) => {
              received.push(`frozen ${(m as ToolExecute).tool!.execId}`);
              receivedAt.push(Date.now());
              // Its holder subscription stays with the server, as a SIGSTOPped process's does: the server
              // never answers "no responders" for it, and nothing answers either once it froze. It stays in
              // the runtimes' queue group too, so a call sent again may reach it again (as a frozen process
              // would be sent it, and never read it).
              frozen.subscribe(callHolderSubject((m as ToolExecute).tool!.execId), {
                callback: (_err, msg) => {
                  if (!answering) return;
                  answered++;
                  msg.respond();
                },
              });
              return new Promise(() => {});
            },
          );
          await frozen.flush();
          const message = toolCall(bus);
          const giveUp = new AbortController(); // A failed step leaves no call behind for the next ones.
          const reply = requestRuntimeCall(bus, message, message.tool!.execId, ToolExecuteResultSchema, {
            timeoutMs: 60_000,
            timing: SILENT_TIMING,
            signal: giveUp.signal,
          });
          reply.catch(() => {}); // Awaited below; rejected only once the step failed and gave it up.
          let live: NatsConnection | undefined;
          try {
            await until(() => answered > 0, "the frozen runtime answered for the call before it froze");
            answering = false;
            const frozeAt = Date.now();
            // Before the fix the call stayed with the frozen runtime for its whole limit (60 s here), or until
            // the server dropped the frozen connection (two missed pings).
            await until(
              () => received.length === 3,
              "the call sent again twice, to the frozen runtime (the only one)",
              SILENT_TIMING.silentAfterMs + 10_000,
            );
            const resentAfter = receivedAt[1] - frozeAt;
            // Less one question's interval: one asked just before `answering` turned false went unanswered.
            assert.ok(
              resentAfter >= SILENT_TIMING.silentAfterMs - SILENT_TIMING.askEveryMs,
              `sent again ${resentAfter} ms after the holder fell silent, before silentAfterMs`,
            );
            // Those sends reached the frozen runtime again: they count as no vanishing (3 would fail the call).
            live = await connect("live-2");
            runtime(live, "live", true, received);
            await live.flush();
            const result = await within(reply, 10_000, "the call answered by the live runtime");
            assert.equal(result.result.case, "success");
            const id = message.tool!.execId;
            assert.deepEqual(received.slice(0, 3), [`frozen ${id}`, `frozen ${id}`, `frozen ${id}`]);
            assert.equal(received.at(-1), `live ${id}`, "the live runtime ran it, with the same call id");
            assert.ok(!frozen.isClosed(), "the frozen runtime's connection stayed open");
          } finally {
            giveUp.abort();
            await live?.close();
            await frozen.close();
          }
        },
      );

      await t.step(
        "the engine's own server not answering is not the holder's silence: the call is kept",
        async () => {
          const received: string[] = [];
          const holding = await connect("holding");
          const release = Promise.withResolvers<void>();
          const held = new HeldCalls(holding);
          new Bus(holding, { source: "holding" }).serve(
            "compozy.*.tool.cmds.*.execute",
            "compozy-runtime",
            ToolExecuteResultSchema,
            (m) => {
              // Each delivery counts: one sent again would join the running call here (HeldCalls).
              received.push((m as ToolExecute).tool!.execId);
              return held.hold((m as ToolExecute).tool!.execId, async () => {
                await release.promise;
                return create(ToolExecuteResultSchema, {
                  result: { case: "success", value: { durationMs: 1n } },
                });
              });
            },
          );
          await holding.flush();
          const message = toolCall(bus);
          const reply = requestRuntimeCall(bus, message, message.tool!.execId, ToolExecuteResultSchema, {
            timeoutMs: 60_000,
            timing: SILENT_TIMING,
          });
          await until(() => received.length === 1, "the call reached the runtime");
          await new Promise((r) => setTimeout(r, SILENT_TIMING.firstAskMs + 100));
          // The server freezes for longer than the silence allowed: every question times out, and so does the
          // engine's own ping, so the engine cannot tell anything about the holder.
          Deno.kill(nats.server.pid, "SIGSTOP");
          try {
            await new Promise((r) => setTimeout(r, SILENT_TIMING.silentAfterMs * 2.5));
          } finally {
            Deno.kill(nats.server.pid, "SIGCONT");
          }
          // Past the server's return, the holder answers again.
          await new Promise((r) => setTimeout(r, SILENT_TIMING.silentAfterMs));
          release.resolve();
          assert.equal((await reply).result.case, "success");
          assert.deepEqual(received, [message.tool!.execId], "sent once");
          await holding.close();
        },
      );

      await t.step(
        "a runtime too busy to answer in time, for less than silentAfterMs, keeps its call: it is not sent twice",
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
