/**
 * Defects of issue 9, each reproduced against a real engine on a real nats-server (durations are short; no
 * assertion is on timing). Every step failed before its fix.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import type { ExecutionState, TaskExecutionState } from "../../engine/mod.ts";
import { Kvm } from "@nats-io/kv";
import { uuidv7 } from "../../engine/ids.ts";
import { BUCKETS, STREAMS } from "../../pkg/nats/mod.ts";
import type { TaskExecutionCanceled } from "../../pkg/pb/mod.ts";
import { create } from "@bufbuild/protobuf";
import { projectWith, run, waitForChild, waitForStatus, withEngine } from "../support/flows.ts";
import { type EngineHarness, startEngineHarness } from "../support/engine.ts";
import { TaskResumeSchema, WorkflowExecutionStartedSchema, WorkflowSignalSchema } from "../../pkg/pb/mod.ts";

/** Waits until the workflow executor's consumer holds no message unacknowledged (nothing is redelivered). */
async function commandsSettled(h: EngineHarness): Promise<{ pending: number; redelivered: number }> {
  const jsm = await jetstreamManager(h.nc);
  const deadline = Date.now() + 5_000;
  let info = await jsm.consumers.info(STREAMS.workflowCommands, "compozy-workflow-executor");
  while ((info.num_ack_pending > 0 || info.num_pending > 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    info = await jsm.consumers.info(STREAMS.workflowCommands, "compozy-workflow-executor");
  }
  return { pending: info.num_ack_pending + info.num_pending, redelivered: info.num_redelivered };
}

/** Polls (bounded) until the task `id` of `execId` reads `status`. */
async function waitForTaskStatus(
  h: EngineHarness,
  execId: string,
  id: string,
  status: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  let seen: string | undefined;
  while (Date.now() < deadline) {
    seen = (await h.engine.client.get(execId))?.tasks.find((t) => t.task_id === id)?.status;
    if (seen === status) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`task ${id} of ${execId} did not reach ${status} (last seen: ${seen ?? "absent"})`);
}

function taskOf(state: ExecutionState, id: string): TaskExecutionState {
  const task = state.tasks.find((t) => t.task_id === id);
  assert.ok(task, `no task ${id} in ${state.tasks.map((t) => t.task_id).join(", ")}`);
  return task;
}

Deno.test("issue 9 defects", async (t) => {
  await t.step("1: .tasks.<sibling> inside a collection item reads that item's result", async () => {
    await withEngine(
      `tasks:
  - id: each
    type: collection
    items: [x, y, z]
    task:
      id: per
      type: composite
      tasks:
        - id: a
          use: tool(id=echo)
          with: { tag: "{{ .item }}" }
        - id: nap
          type: sleep
          duration: 100ms
        - id: agg
          type: aggregate
          outputs: { from_a: "{{ .tasks.a.output.tag }}", item: "{{ .item }}" }
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, [
          { from_a: "x", item: "x" },
          { from_a: "y", item: "y" },
          { from_a: "z", item: "z" },
        ]);
      },
    );
  });

  await t.step("1: a composite's children stay readable after it, also after a replay", async () => {
    await withEngine(
      `tasks:
  - id: box
    type: composite
    tasks:
      - id: inner
        use: tool(id=echo)
        with: { v: 5 }
  - id: nap
    type: sleep
    duration: 50ms
  - id: after
    type: aggregate
    outputs: { v: "{{ .tasks.inner.output.v }}" }
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { v: 5 });
      },
    );
  });

  await t.step("G1: a failed task handled by on_error reads FAILED in .tasks", async () => {
    await withEngine(
      `tasks:
  - id: bad
    use: tool(id=boom)
    on_error: { next: after }
  - id: after
    type: aggregate
    outputs: { ok: true }
outputs:
  status: "{{ .tasks.bad.status }}"
  code: "{{ .tasks.bad.error.code }}"
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { status: "FAILED", code: "tool_threw" });
      },
    );
  });

  await t.step("2: a wait's on_timeout holds after a later park (the approval shape)", async () => {
    await withEngine(
      `tasks:
  - id: hold
    type: wait
    signal: never
    timeout: 200ms
    on_timeout: remind
  - id: unreachable
    use: tool(id=echo)
    final: true
  - id: remind
    use: tool(id=echo)
    with: { remind: true }
  - id: nap
    type: sleep
    duration: 200ms
  - id: final
    use: tool(id=echo)
    with: { done: true }
    final: true
`,
      async (h, calls) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, { done: true });
        assert.deepEqual(calls, ["remind", "final"]);
      },
    );
  });

  await t.step(
    "3: a condition that cannot be evaluated is a dropped non-match, not a redelivery",
    async () => {
      await withEngine(
        `tasks:
  - id: hold
    type: wait
    signal: approval
    condition: '{{ .signal.payload.ticket == "T1" }}'
  - id: done
    use: tool(id=echo)
    with: { ticket: "{{ .tasks.hold.output.ticket }}" }
`,
        async (h) => {
          const { execId } = await h.engine.client.trigger("main", {});
          await waitForStatus(h, execId, "WAITING");
          await h.engine.client.signal(execId, "approval", { other: 1 });
          const settled = await commandsSettled(h);
          assert.equal(settled.pending, 0, "the unreadable signal is still being redelivered");
          assert.equal((await h.engine.client.get(execId))?.status, "WAITING");
          await h.engine.client.signal(execId, "approval", { ticket: "T1" });
          const state = await h.engine.client.waitForEnd(execId, 10_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          assert.deepEqual(state.output, { ticket: "T1" });
        },
      );
    },
  );

  await t.step("3: a wait condition inside a collection reads .index and .item", async () => {
    await withEngine(
      `tasks:
  - id: each
    type: collection
    items: [a, b]
    task:
      id: hold
      type: wait
      signal: go
      condition: "{{ .signal.payload.n == .index && .signal.payload.name == .item }}"
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        await waitForStatus(h, execId, "WAITING");
        await h.engine.client.signal(execId, "go", { n: 1, name: "b" });
        await h.engine.client.signal(execId, "go", { n: 0, name: "a" });
        const state = await h.engine.client.waitForEnd(execId, 10_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(state.output, [{ n: 0, name: "a" }, { n: 1, name: "b" }]);
      },
    );
  });

  await t.step("G2: a signal is not taken by a wait that starts after it", async () => {
    await withEngine(
      `tasks:
  - id: first
    type: wait
    signal: go-first
  - id: second
    type: wait
    signal: go-second
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        await waitForStatus(h, execId, "WAITING");
        await h.engine.client.signal(execId, "go-second", { early: true });
        await h.engine.client.signal(execId, "go-first", {});
        await commandsSettled(h);
        // The state manager folds the events after the commands are acknowledged: wait for `second` to wait
        // (on a loaded machine the state read at once still said RUNNING). Had it taken the early signal, the
        // execution would end with `{ early: true }`, which the last assertion catches.
        await waitForTaskStatus(h, execId, "second", "WAITING");
        assert.equal((await h.engine.client.get(execId))?.status, "WAITING");
        await h.engine.client.signal(execId, "go-second", { late: true });
        assert.deepEqual((await h.engine.client.waitForEnd(execId, 10_000)).output, { late: true });
      },
    );
  });

  await t.step("one signal ends every wait for it that accepts it", async () => {
    await withEngine(
      `tasks:
  - id: each
    type: collection
    items: [a, b, c]
    task:
      id: hold
      type: wait
      signal: go
      condition: '{{ .item != "c" }}'
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        await waitForStatus(h, execId, "WAITING");
        await h.engine.client.signal(execId, "go", { n: 1 });
        await commandsSettled(h);
        const state = (await h.engine.client.get(execId))!;
        assert.deepEqual(
          ["each[0]", "each[1]", "each[2]"].map((id) => taskOf(state, id).status),
          ["SUCCESS", "SUCCESS", "WAITING"],
        );
        await h.engine.client.cancel(execId, "done");
      },
    );
  });

  await t.step("4: timeout bounds a sleep, a composite and a sub-workflow", async () => {
    const files = {
      "compozy.yaml": "name: flows\nworkflows:\n  - source: ./wf.yaml\n  - source: ./stuck.yaml\n",
      "wf.yaml": `id: main
tools:
  - id: echo
    execute: ./t.ts
tasks:
  - id: nap
    type: sleep
    duration: 20s
    timeout: 200ms
    on_error: { next: box }
  - id: box
    type: composite
    timeout: 200ms
    tasks:
      - id: inner
        type: sleep
        duration: 20s
    on_error: { next: sub }
  - id: sub
    use: workflow(id=stuck)
    timeout: 200ms
    on_error: { next: handled }
  - id: handled
    use: tool(id=echo)
    with: { error: "{{ .error.code }}" }
`,
      "stuck.yaml": "id: stuck\ntasks:\n  - id: hold\n    type: wait\n    signal: never\n",
      "t.ts": "export default (input: unknown) => input;\n",
    };
    await withEngine(files, async (h) => {
      const state = await run(h);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.deepEqual(state.output, { error: "task_timeout" });
      for (const id of ["nap", "box", "sub"]) {
        assert.equal(taskOf(state, id).status, "FAILED", id);
        assert.equal(taskOf(state, id).error?.code, "task_timeout", id);
      }
      // The timed-out sub-workflow does not outlive its task.
      const child = await waitForChild(h, "stuck");
      assert.equal((await h.engine.client.waitForEnd(child.exec_id, 5_000)).status, "CANCELED");
    });
  });

  await t.step("5: retry re-runs a composite and a sub-workflow", async () => {
    const files = {
      "compozy.yaml": "name: flows\nworkflows:\n  - source: ./wf.yaml\n  - source: ./child.yaml\n",
      "wf.yaml": `id: main
tools:
  - id: flaky
    execute: ./t.ts
tasks:
  - id: box
    type: composite
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 20ms } }
    tasks:
      - id: inner
        use: tool(id=flaky)
  - id: sub
    use: workflow(id=child)
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 20ms } }
`,
      "child.yaml": `id: child
tools:
  - id: flaky
    execute: ./t.ts
tasks:
  - id: only
    use: tool(id=flaky)
`,
      "t.ts": "export default (input: unknown) => input;\n",
    };
    await withEngine(files, async (h) => {
      const state = await run(h);
      assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
      assert.equal(taskOf(state, "box").attempts, 3);
      // The flaky tool's count goes on (3 calls so far): the child workflow succeeds at its first try.
      assert.deepEqual(state.output, { attempts: 4 });
    });
  });

  await t.step("6: race and fail_fast end at the decision; the rest is canceled", async () => {
    await withEngine(
      `tasks:
  - id: fan
    type: parallel
    strategy: race
    tasks:
      - id: quick
        type: sleep
        duration: 100ms
      - id: long
        type: sleep
        duration: 30s
  - id: ff
    type: parallel
    strategy: fail_fast
    tasks:
      - id: bad
        use: tool(id=boom)
      - id: later
        type: sleep
        duration: 30s
    on_error: { next: done }
  - id: done
    use: tool(id=echo)
    with: { error: "{{ .error.message }}" }
`,
      async (h) => {
        const state = await run(h, {}, 10_000);
        assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
        assert.deepEqual(taskOf(state, "fan").output ?? null, { quick: null });
        assert.equal(taskOf(state, "fan/long").status, "CANCELED");
        assert.equal(taskOf(state, "ff").status, "FAILED");
        assert.equal(taskOf(state, "ff/later").status, "CANCELED");
        assert.match(JSON.stringify(state.output), /boom/);
      },
    );
  });

  await t.step("10: a nested wait of a paused execution keeps waiting and takes its wake-ups", async () => {
    await withEngine(
      `tasks:
  - id: box
    type: composite
    tasks:
      - id: hold
        type: wait
        signal: go
      - id: limit
        type: wait
        signal: never
        timeout: 300ms
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        await waitForStatus(h, execId, "WAITING");
        await h.engine.client.pause(execId);
        await waitForStatus(h, execId, "PAUSED");
        await h.engine.client.signal(execId, "go", { n: 1 });
        await commandsSettled(h);
        await h.engine.client.resume(execId);
        // The signal was taken while paused: the next wait starts and times out on its own.
        const state = await h.engine.client.waitForEnd(execId, 10_000);
        assert.equal(state.status, "FAILED");
        assert.equal(state.error?.code, "wait_timeout");
      },
    );
  });

  await t.step("10: a cancel records each running tool call canceled, which tells the runtime", async () => {
    await withEngine("tasks:\n  - id: long\n    use: tool(id=slow)\n    with: { ms: 3000 }\n", async (h) => {
      const canceled: string[] = [];
      const sub = h.bus.subscribe("compozy.*.task.evts.*.canceled", (m) => {
        canceled.push((m as TaskExecutionCanceled).task?.execId ?? "");
      });
      try {
        const { execId } = await h.engine.client.trigger("main", {});
        let running: TaskExecutionState | undefined;
        const deadline = Date.now() + 10_000;
        while (!running && Date.now() < deadline) {
          running = (await h.engine.client.get(execId))?.tasks.find((x) => x.status === "RUNNING");
          if (!running) await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(running, "the tool call did not start");
        await h.engine.client.cancel(execId, "stop");
        assert.equal((await h.engine.client.waitForEnd(execId, 5_000)).status, "CANCELED");
        const until = Date.now() + 5_000;
        while (!canceled.includes(running.exec_id) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.deepEqual(canceled, [running.exec_id]);
      } finally {
        sub.unsubscribe();
      }
    });
  });

  await t.step("10: the workflow's time-out timer is removed when the workflow ends", async () => {
    await withEngine("config:\n  timeout: 1h\ntasks:\n  - id: a\n    use: tool(id=echo)\n", async (h) => {
      const state = await run(h);
      assert.equal(state.status, "SUCCESS");
      const jsm = await jetstreamManager(h.nc);
      const deadline = Date.now() + 5_000;
      let left = (await jsm.streams.info(STREAMS.taskCommands)).state.messages;
      while (left > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        left = (await jsm.streams.info(STREAMS.taskCommands)).state.messages;
      }
      assert.equal(left, 0);
    });
  });

  await t.step("G5: removing an ended workflow's time-out timer leaves other timers alone", async () => {
    const files = {
      "compozy.yaml": "name: flows\nworkflows:\n  - source: ./wf.yaml\n  - source: ./timed.yaml\n",
      "wf.yaml": "id: main\ntasks:\n  - id: nap\n    type: sleep\n    duration: 1s\n",
      "timed.yaml":
        "id: timed\nconfig:\n  timeout: 1h\ntasks:\n  - id: a\n    type: aggregate\n    outputs: {}\n",
    };
    await withEngine(files, async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      // Parked: its sleep's timer was delivered once and is held (nak'd) until due.
      await waitForStatus(h, execId, "WAITING");
      const jsm = await jetstreamManager(h.nc);
      const deadline = Date.now() + 5_000;
      while ((await jsm.consumers.info(STREAMS.taskCommands, "compozy-task-timers")).num_ack_pending === 0) {
        assert.ok(Date.now() < deadline, "the sleep's timer was never delivered");
        await new Promise((r) => setTimeout(r, 20));
      }
      // Another execution with a time-out ends meanwhile: its own timer is removed from TASK_CMDS.
      const { execId: timed } = await h.engine.client.trigger("timed", {});
      assert.equal((await h.engine.client.waitForEnd(timed, 10_000)).status, "SUCCESS");
      // The sleep still wakes (a purge of TASK_CMDS made nats-server forget every held timer).
      assert.equal((await h.engine.client.waitForEnd(execId, 15_000)).status, "SUCCESS");
    });
  });

  await t.step(
    "G7: a key claimed by an engine that died before the start still starts its execution",
    async () => {
      await withEngine("tasks:\n  - id: a\n    use: tool(id=echo)\n    with: { v: 1 }\n", async (h) => {
        // What a SIGKILL between the claim and the start leaves: the key names an execution with no start.
        const claim = async (key: string, execId: string) => {
          const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`main\n${key}`));
          const name = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
          await (await new Kvm(h.nc).open(BUCKETS.idempotency)).create(
            name,
            new TextEncoder().encode(execId),
          );
        };
        const orphan = uuidv7();
        await claim("order-7", orphan);

        const retried = await h.engine.client.trigger("main", {}, { idempotencyKey: "order-7" });
        assert.deepEqual(retried, { execId: orphan, duplicate: true });
        const state = await h.engine.client.waitForEnd(orphan, 10_000);
        assert.equal(state.status, "SUCCESS");
        assert.equal(state.correlation_id, orphan);
        // Once started, the key answers as before, and nothing starts twice.
        assert.deepEqual(await h.engine.client.trigger("main", {}, { idempotencyKey: "order-7" }), retried);
        assert.equal((await h.engine.client.list({ workflowId: "main" })).items.length, 1);

        // Killed one step later: the start is stored, the execute command never sent.
        const started = uuidv7();
        await claim("order-8", started);
        await h.bus.publish(create(WorkflowExecutionStartedSchema, {
          metadata: h.bus.metadata(started, `${started}:started`),
          workflow: { id: "main", execId: started },
          inputJson: new TextEncoder().encode("{}"),
        }));
        await waitForStatus(h, started, "RUNNING");
        await h.engine.client.trigger("main", {}, { idempotencyKey: "order-8" });
        assert.equal((await h.engine.client.waitForEnd(started, 10_000)).status, "SUCCESS");
      });
    },
  );

  await t.step(
    "B1: concurrent starts under one key with different inputs run on the input they record",
    async () => {
      const tasks = 'tasks:\n  - id: a\n    use: tool(id=echo)\n    with: { i: "{{ .workflow.input.i }}" }\n';
      await withEngine(tasks, async (h) => {
        for (let round = 0; round < 5; round++) {
          const key = `race-${round}`;
          const replies = await Promise.all(
            Array.from(
              { length: 20 },
              (_, i) => h.engine.client.trigger("main", { i }, { idempotencyKey: key }),
            ),
          );
          const execId = replies[0].execId;
          assert.ok(replies.every((r) => r.execId === execId), "one key, one execution");
          const state = await h.engine.client.waitForEnd(execId, 15_000);
          assert.equal(state.status, "SUCCESS");
          const ran = state.tasks.find((task) => task.task_id === "a")?.output as { i: number };
          const recorded = state.input as { i: number };
          // On c3de0c2 a duplicate re-sent the start and execute with its own input: the task ran on another.
          assert.equal(ran.i, recorded.i, `round ${round}: ran on ${ran.i}, recorded ${recorded.i}`);
        }
      });
    },
  );

  await t.step("10: a cancel finds children through an index, not a scan of every execution", async () => {
    const files = {
      "compozy.yaml": "name: flows\nworkflows:\n  - source: ./wf.yaml\n  - source: ./stuck.yaml\n",
      "wf.yaml": "id: main\ntasks:\n  - id: sub\n    use: workflow(id=stuck)\n",
      "stuck.yaml": "id: stuck\ntasks:\n  - id: hold\n    type: wait\n    signal: never\n",
    };
    await withEngine(files, async (h) => {
      const { execId } = await h.engine.client.trigger("main", {});
      const child = await waitForChild(h, "stuck");
      await waitForStatus(h, child.exec_id, "WAITING");
      await waitForStatus(h, execId, "WAITING");
      const store = h.engine.store;
      store.ids = () => Promise.reject(new Error("scanned every execution"));
      const found = await store.findChildren(execId);
      assert.deepEqual(found.map((d) => d.exec_id), [child.exec_id]);
      await h.engine.client.cancel(execId, "stop");
      assert.equal((await h.engine.client.waitForEnd(child.exec_id, 5_000)).status, "CANCELED");
    });
  });
});

Deno.test("bad input: a command that cannot be processed fails its execution, then goes to the DLQ", async () => {
  const h = await startEngineHarness(projectWith("tasks:\n  - id: hold\n    type: wait\n    signal: go\n"), {
    redelivery: { failed: 2 },
  });
  try {
    const { execId } = await h.engine.client.trigger("main", {});
    await waitForStatus(h, execId, "WAITING");
    const state = await h.engine.client.get(execId);
    // A wake-up whose payload is not JSON: handling it throws on every delivery.
    await h.bus.publish(create(TaskResumeSchema, {
      metadata: h.bus.metadata(execId),
      workflow: { id: "main", execId },
      task: { id: "hold", execId: state!.tasks[0].exec_id },
      reason: "child",
      payloadJson: new TextEncoder().encode("{not json"),
    }));
    const failed = await h.engine.client.waitForEnd(execId, 15_000);
    assert.equal(failed.status, "FAILED");
    assert.equal(failed.error?.code, "command_failed");
    assert.match(failed.error!.message, /JSON/);
    const jsm = await jetstreamManager(h.nc);
    const deadline = Date.now() + 5_000;
    let dead = (await jsm.streams.info(STREAMS.deadLetters)).state.messages;
    while (dead === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      dead = (await jsm.streams.info(STREAMS.deadLetters)).state.messages;
    }
    assert.equal(dead, 1);
  } finally {
    await h.close();
  }
});

Deno.test("bad input: a signal whose payload is not JSON is dropped; the wait goes on", async () => {
  await withEngine("tasks:\n  - id: hold\n    type: wait\n    signal: go\n", async (h) => {
    const { execId } = await h.engine.client.trigger("main", {});
    await waitForStatus(h, execId, "WAITING");
    await h.bus.publish(create(WorkflowSignalSchema, {
      metadata: h.bus.metadata(execId),
      workflow: { id: "main", execId },
      signalId: "go",
      payloadJson: new TextEncoder().encode("{not json"),
    }));
    const settled = await commandsSettled(h);
    assert.equal(settled.pending, 0);
    assert.equal((await h.engine.client.get(execId))?.status, "WAITING");
    await h.engine.client.signal(execId, "go", { ok: 1 });
    assert.deepEqual((await h.engine.client.waitForEnd(execId, 10_000)).output, { ok: 1 });
  });
});
