/** Control flow and task types, against a real nats-server with a scripted runtime. */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { InputValidationError } from "../../engine/mod.ts";
import { startEngineHarness } from "../support/engine.ts";
import { projectWith, run, waitForChild, waitForStatus, withEngine } from "../support/flows.ts";

Deno.test("task types and control flow", async (t) => {
  await t.step("router follows the rendered route and skips list order", async () => {
    await withEngine(
      `tasks:
  - id: pick
    type: router
    condition: "{{ .workflow.input.kind }}"
    routes: { a: go-a, b: go-b }
  - id: go-a
    use: tool(id=echo)
    with: { v: a }
    final: true
  - id: go-b
    use: tool(id=echo)
    with: { v: b }
    final: true
`,
      async (h, calls) => {
        const state = await run(h, { kind: "b" });
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { v: "b" });
        assert.deepEqual(calls, ["go-b"]);
        assert.deepEqual(state.tasks.find((x) => x.task_id === "pick")?.output, { route: "b" });
        const none = await run(h, { kind: "zzz" });
        assert.equal(none.status, "FAILED");
        assert.match(none.error!.message, /no route for 'zzz'/);
      },
    );
  });

  await t.step("retry with backoff then success; attempts counted", async () => {
    await withEngine(
      `tasks:
  - id: f
    use: tool(id=flaky)
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 50ms } }
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { attempts: 3 });
        assert.equal(state.tasks[0].attempts, 3);
        const history = await h.engine.client.events(state.exec_id);
        assert.equal(history.filter((e) => e.type === "task.retry_scheduled").length, 2);
      },
    );
  });

  await t.step("on_error goes on with .error; without it the workflow fails", async () => {
    await withEngine(
      `tasks:
  - id: b
    use: tool(id=boom)
    on_error: { next: sorry }
  - id: never
    use: tool(id=echo)
  - id: sorry
    use: tool(id=echo)
    with: { reason: "{{ .error.message }}" }
    final: true
`,
      async (h, calls) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { reason: "boom" });
        assert.deepEqual(calls, ["sorry"]);
        assert.equal(state.tasks.find((x) => x.task_id === "b")?.status, "FAILED");
      },
    );
  });

  await t.step("if: false skips the task and the flow goes on", async () => {
    await withEngine(
      `tasks:
  - id: maybe
    if: "{{ .workflow.input.on }}"
    use: tool(id=echo)
  - id: after
    use: tool(id=echo)
    with: { skipped: "{{ .tasks.maybe.status }}" }
`,
      async (h, calls) => {
        const state = await run(h, { on: false });
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(calls, ["after"]);
        assert.equal(state.tasks.find((x) => x.task_id === "maybe")?.status, "SKIPPED");
        assert.deepEqual(state.output, { skipped: "SKIPPED" });
      },
    );
  });

  await t.step("parallel wait_all returns a map; fail_fast fails; best_effort reports errors", async () => {
    await withEngine(
      `tasks:
  - id: fan
    type: parallel
    strategy: "{{ strategy }}"
    tasks:
      - id: x
        use: tool(id=echo)
        with: { v: 1 }
      - id: y
        use: tool(id=echo)
        with: { v: 2 }
`.replace('    strategy: "{{ strategy }}"\n', ""),
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { x: { v: 1 }, y: { v: 2 } });
        assert.ok(state.tasks.find((x) => x.task_id === "fan/x")?.parent_exec_id);
      },
    );
    await withEngine(
      `tasks:
  - id: fan
    type: parallel
    strategy: best_effort
    tasks:
      - id: x
        use: tool(id=echo)
        with: { v: 1 }
      - id: y
        use: tool(id=boom)
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual((state.output as Record<string, unknown>).x, { v: 1 });
        assert.match(JSON.stringify(state.output), /boom/);
      },
    );
    await withEngine(
      `tasks:
  - id: fan
    type: parallel
    strategy: fail_fast
    tasks:
      - id: x
        use: tool(id=slow)
        with: { ms: 50 }
      - id: y
        use: tool(id=boom)
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "FAILED");
        assert.match(state.error!.message, /boom/);
      },
    );
  });

  await t.step("collection: filter, item order, max_workers, then aggregate", async () => {
    await withEngine(
      `tasks:
  - id: each
    type: collection
    items: "{{ .workflow.input.items }}"
    filter: "{{ .item > 1 }}"
    max_workers: 2
    task:
      id: one
      use: tool(id=echo)
      with: { n: "{{ .item }}", i: "{{ .index }}" }
  - id: sum
    type: aggregate
    outputs: { count: "{{ len(.tasks.each.output) }}", first: "{{ .tasks.each.output }}" }
`,
      async (h) => {
        const state = await run(h, { items: [1, 2, 3, 4] });
        assert.equal(state.status, "SUCCESS");
        assert.equal((state.output as { count: number }).count, 3);
        assert.deepEqual((state.output as { first: unknown }).first, [{ n: 2, i: 1 }, { n: 3, i: 2 }, {
          n: 4,
          i: 3,
        }]);
      },
    );
  });

  await t.step("composite runs children in order; output is the last one's", async () => {
    await withEngine(
      `tasks:
  - id: steps
    type: composite
    tasks:
      - id: s1
        use: tool(id=echo)
        with: { v: 1 }
      - id: s2
        use: tool(id=echo)
        with: { prev: "{{ .tasks.s1.output.v }}" }
`,
      async (h, calls) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { prev: 1 });
        assert.deepEqual(calls, ["steps/s1", "steps/s2"]);
      },
    );
  });

  await t.step("sub-workflow: the child's output is the task's output", async () => {
    await withEngine(
      `tasks:
  - id: sub
    use: workflow(id=child)
    with: { v: 42 }
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { v: 42 });
        const children = await h.engine.client.list({ workflowId: "child" });
        assert.equal(children.items.length, 1);
        assert.equal(children.items[0].correlation_id, state.exec_id);
      },
    );
  });

  await t.step("wait: a matching signal resumes; a non-matching one does not", async () => {
    await withEngine(
      `tasks:
  - id: approve
    type: wait
    signal: approval
    condition: "{{ .signal.payload.ok == true }}"
    timeout: 1m
  - id: done
    use: tool(id=echo)
    with: { by: "{{ .tasks.approve.output.by }}" }
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        await waitForStatus(h, execId, "WAITING");
        await h.engine.client.signal(execId, "approval", { ok: false, by: "mallory" });
        await new Promise((r) => setTimeout(r, 200));
        assert.equal((await h.engine.client.get(execId))?.status, "WAITING");
        assert.deepEqual(await h.engine.client.broadcastSignal("approval", { ok: true, by: "ada" }), [
          execId,
        ]);
        const state = await h.engine.client.waitForEnd(execId, 10_000);
        assert.equal(state.status, "SUCCESS");
        assert.deepEqual(state.output, { by: "ada" });
        await assert.rejects(h.engine.client.signal(execId, "approval", {}), /it is SUCCESS/);
      },
    );
  });

  await t.step("a signal task wakes every execution waiting for its signal", async () => {
    await withEngine(
      `tasks:
  - id: branch
    type: router
    condition: "{{ .workflow.input.role }}"
    routes:
      waiter: hold
      sender: send
  - id: hold
    type: wait
    signal: go
    final: true
  - id: send
    type: signal
    signal: { id: go, payload: { from: sender } }
    final: true
`,
      async (h) => {
        const waiters = [
          (await h.engine.client.trigger("main", { role: "waiter" })).execId,
          (await h.engine.client.trigger("main", { role: "waiter" })).execId,
        ];
        for (const id of waiters) await waitForStatus(h, id, "WAITING");
        const sender = await run(h, { role: "sender" });
        assert.equal(sender.status, "SUCCESS");
        assert.deepEqual(sender.output, { signal: "go", delivered: 2 });
        for (const id of waiters) {
          const state = await h.engine.client.waitForEnd(id, 10_000);
          assert.equal(state.status, "SUCCESS");
          assert.deepEqual(state.output, { from: "sender" });
        }
        // The index of waits is emptied as the waits end: no marker stays behind.
        const jsm = await jetstreamManager(h.nc);
        const deadline = Date.now() + 5_000;
        let left = 1;
        while (left > 0 && Date.now() < deadline) {
          const info = await jsm.streams.info("KV_compozy_waiting", { subjects_filter: ">" });
          left = Object.keys(info.state.subjects ?? {}).length;
          if (left) await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(left, 0);
      },
    );
  });

  await t.step("wait time-out goes to on_timeout; sleep is a durable timer", async () => {
    await withEngine(
      `tasks:
  - id: nap
    type: sleep
    duration: 300ms
  - id: approve
    type: wait
    signal: never
    timeout: 200ms
    on_timeout: late
  - id: unreachable
    use: tool(id=echo)
  - id: late
    use: tool(id=echo)
    with: { late: true, why: "{{ .error.code }}" }
    final: true
`,
      async (h, calls) => {
        const started = Date.now();
        const state = await run(h);
        assert.equal(state.status, "SUCCESS");
        // The on_timeout target reads `.error` as an on_error target does (docs/yaml-reference.md).
        assert.deepEqual(state.output, { late: true, why: "wait_timeout" });
        assert.ok(Date.now() - started >= 500);
        assert.deepEqual(calls, ["late"]);
      },
    );
  });

  await t.step("cancel, pause and resume", async () => {
    await withEngine(
      `tasks:
  - id: hold
    type: wait
    signal: go
  - id: after
    use: tool(id=echo)
`,
      async (h) => {
        const a = (await h.engine.client.trigger("main", {})).execId;
        await waitForStatus(h, a, "WAITING");
        await h.engine.client.cancel(a, "no longer needed");
        const canceled = await h.engine.client.waitForEnd(a, 5_000);
        assert.equal(canceled.status, "CANCELED");
        assert.equal(canceled.error?.message, "no longer needed");
        await assert.rejects(h.engine.client.cancel(a), /it is CANCELED/);

        const b = (await h.engine.client.trigger("main", {})).execId;
        await waitForStatus(h, b, "WAITING");
        await h.engine.client.pause(b);
        await waitForStatus(h, b, "PAUSED");
        await h.engine.client.signal(b, "go", {});
        await new Promise((r) => setTimeout(r, 200));
        await h.engine.client.resume(b);
        const done = await h.engine.client.waitForEnd(b, 5_000);
        assert.equal(done.status, "SUCCESS");
      },
    );
  });

  await t.step(
    "a cancel ends waiting branches and reaches sub-workflows; nothing is recorded after it",
    async () => {
      const files = projectWith(`tasks:
  - id: both
    type: parallel
    tasks:
      - id: nap
        type: sleep
        duration: 1h
      - id: sub
        use: workflow(id=sleeper)
`);
      files["compozy.yaml"] = files["compozy.yaml"].replace("./child.yaml", "./sleeper.yaml");
      files["sleeper.yaml"] = "id: sleeper\ntasks:\n  - id: hold\n    type: wait\n    signal: never\n";
      const h = await startEngineHarness(files);
      try {
        const { execId } = await h.engine.client.trigger("main", {});
        await waitForStatus(h, execId, "WAITING");
        const child = (await waitForChild(h, "sleeper")).exec_id;
        await waitForStatus(h, child, "WAITING");
        await h.engine.client.cancel(execId, "stop");
        assert.equal((await h.engine.client.waitForEnd(execId, 5_000)).status, "CANCELED");
        assert.equal((await h.engine.client.waitForEnd(child, 5_000)).status, "CANCELED");
        await new Promise((r) => setTimeout(r, 200));
        // A take-over is the lease's bookkeeping, not a record of the run: a command delivered after the end
        // (the child's end, to wake its parent) takes the lease, appends one and finds the execution ended.
        const history = (await h.engine.client.events(execId)).map((e) => e.type)
          .filter((type) => type !== "workflow.taken_over");
        assert.equal(history.at(-1), "workflow.canceled", history.join(" "));
      } finally {
        await h.close();
      }
    },
  );

  await t.step("a parked execution times out on its durable workflow timer", async () => {
    await withEngine(
      `config:
  timeout: 400ms
tasks:
  - id: hold
    type: wait
    signal: never
`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        const state = await h.engine.client.waitForEnd(execId, 10_000);
        assert.equal(state.status, "TIMED_OUT");
        assert.equal(state.error?.code, "workflow_timeout");
      },
    );
  });

  await t.step(
    "after a park and wake-up, a router's route and earlier outputs are replayed as they were",
    async () => {
      await withEngine(
        `tasks:
  - id: pick
    type: router
    condition: "{{ .workflow.input.kind }}"
    routes: { x: steps }
    outputs: { chosen: "{{ .output.route }}" }
  - id: fallback
    use: tool(id=echo)
    with: { wrong: true }
    final: true
  - id: steps
    type: composite
    tasks:
      - id: first
        use: tool(id=echo)
        with: { v: 7 }
      - id: hold
        type: wait
        signal: go
      - id: after
        use: tool(id=echo)
        with: { first: "{{ .tasks.first.output.v }}", got: "{{ .tasks.hold.output.n }}" }
    final: true
`,
        async (h, calls) => {
          const { execId } = await h.engine.client.trigger("main", { kind: "x" });
          await waitForStatus(h, execId, "WAITING");
          await h.engine.client.signal(execId, "go", { n: 1 });
          const state = await h.engine.client.waitForEnd(execId, 10_000);
          assert.equal(state.status, "SUCCESS", JSON.stringify(state.error));
          assert.deepEqual(state.output, { first: 7, got: 1 });
          assert.deepEqual(calls, ["steps/first", "steps/after"]);
        },
      );
    },
  );

  await t.step("a cancel ends a running chain of tasks at once", async () => {
    await withEngine(
      `tasks:
${
        Array.from({ length: 10 }, (_, i) =>
          `  - id: s${i}
    use: tool(id=slow)
    with: { ms: 5000 }
`).join("")
      }`,
      async (h) => {
        const { execId } = await h.engine.client.trigger("main", {});
        const deadline = Date.now() + 10_000;
        while (!(await h.engine.client.get(execId))?.tasks.some((x) => x.task_id === "s0")) {
          assert.ok(Date.now() < deadline, "s0 never started");
          await new Promise((r) => setTimeout(r, 20));
        }
        await h.engine.client.cancel(execId, "enough");
        const state = await h.engine.client.waitForEnd(execId, 10_000);
        assert.equal(state.status, "CANCELED");
        // At once: the running task ends canceled instead of being waited for, and no later task starts.
        assert.deepEqual(state.tasks.map((x) => [x.task_id, x.status]), [["s0", "CANCELED"]]);
      },
    );
  });

  await t.step("input failing the schema is refused before anything starts", async () => {
    const workflow = `config:
  input: { type: object, properties: { n: { type: number } }, required: [n] }
tasks:
  - id: a
    use: tool(id=echo)
`;
    await withEngine(workflow, async (h) => {
      await assert.rejects(
        h.engine.client.trigger("main", { n: "x" }),
        (e) => e instanceof InputValidationError && e.fields[0].path === "/n",
      );
      await assert.rejects(
        h.engine.client.trigger("main", {}),
        (e) =>
          e instanceof InputValidationError && e.fields[0].path === "/n" &&
          /required/.test(e.fields[0].message),
      );
      assert.equal((await h.engine.client.list()).items.length, 0);
    });
  });

  await t.step("the same idempotency key starts one execution", async () => {
    await withEngine("tasks:\n  - id: a\n    use: tool(id=echo)\n", async (h) => {
      const first = await h.engine.client.trigger("main", {}, { idempotencyKey: "order-1" });
      const again = await h.engine.client.trigger("main", {}, { idempotencyKey: "order-1" });
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.equal(again.execId, first.execId);
    });
  });

  await t.step("a template that fails at run time fails its task naming the path", async () => {
    await withEngine(
      `tasks:
  - id: a
    use: tool(id=echo)
    with: { v: "{{ .workflow.input.missing.deep }}" }
`,
      async (h) => {
        const state = await run(h);
        assert.equal(state.status, "FAILED");
        assert.equal(state.error?.code, "template_error");
        assert.match(state.error!.message, /task 'a', field 'with\.v'.*missing/);
      },
    );
  });
});
