/**
 * Secrets are not kept in clear where they need not be (issue 10): commands that carry env values are
 * redacted before they are dead-lettered; the runtime never reports a call's env values in its logs or its
 * failure; and an execution's state and history do not hold them. Real nats-server, engine, runtime and
 * sandbox processes.
 */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { DLQ_REDACTED_HEADER, redactDeadLetter, REDACTED } from "../../pkg/nats/dead_letter_redaction.ts";
import { Bus, connectNats, provisionJetStream, STREAMS } from "../../pkg/nats/mod.ts";
import { AgentExecuteSchema, ToolExecuteResultSchema, ToolExecuteSchema } from "../../pkg/pb/mod.ts";
import { startRuntime } from "../../pkg/runtime/service.ts";
import { ToolRunner } from "../../pkg/runtime/tool_runner.ts";
import { startEngineHarness } from "../support/engine.ts";
import { startTestNats } from "../support/nats.ts";
import { call, ToolDir } from "./_helpers.ts";

const SECRET = "tok-very-secret-4242";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toolExecute(): Uint8Array {
  return toBinary(
    ToolExecuteSchema,
    create(ToolExecuteSchema, {
      tool: { id: "leaky", execId: "tool-exec-1" },
      attempt: 2,
      inputJson: encoder.encode('{"a":1}'),
      env: { SECRET_TOKEN: SECRET, SHORT: "abc" },
      timeoutMs: 5_000n,
    }),
  );
}

/** A ToolExecute that fails to decode: a second `tool` field holds a string of invalid UTF-8. */
function undecodableToolExecute(): Uint8Array {
  const good = toolExecute();
  const bad = new Uint8Array([0x22, 0x04, 0x0a, 0x02, 0xff, 0xfe]);
  const out = new Uint8Array(good.length + bad.length);
  out.set(good);
  out.set(bad, good.length);
  return out;
}

function contains(bytes: Uint8Array, text: string): boolean {
  return decoder.decode(bytes).includes(text);
}

Deno.test("dead letters of commands that carry secrets are redacted", async (t) => {
  await t.step("a ToolExecute keeps its fields and env names, never the env values", () => {
    const kept = redactDeadLetter("compozy.c1.tool.cmds.t1.execute", toolExecute());
    assert.ok(!contains(kept.data, SECRET));
    assert.equal(kept.redacted, "env values");
    const decoded = fromBinary(ToolExecuteSchema, kept.data);
    assert.deepEqual(decoded.env, { SECRET_TOKEN: REDACTED, SHORT: REDACTED });
    assert.equal(decoded.tool?.execId, "tool-exec-1");
    assert.equal(decoded.attempt, 2);
    assert.equal(decoder.decode(decoded.inputJson), '{"a":1}');
  });

  await t.step("an AgentExecute loses its definition (rendered model credentials) too", () => {
    const agent = toBinary(
      AgentExecuteSchema,
      create(AgentExecuteSchema, {
        prompt: "hello",
        definitionJson: encoder.encode(JSON.stringify({ model: { apiKey: SECRET } })),
        env: { OPENAI_API_KEY: SECRET },
      }),
    );
    const kept = redactDeadLetter("compozy.c1.agent.cmds.a1.execute", agent);
    assert.ok(!contains(kept.data, SECRET));
    assert.equal(kept.redacted, "definition_json, env values");
    const decoded = fromBinary(AgentExecuteSchema, kept.data);
    assert.equal(decoded.prompt, "hello");
    assert.equal(decoded.definitionJson.length, 0);
    assert.deepEqual(decoded.env, { OPENAI_API_KEY: REDACTED });
  });

  await t.step("a payload that is not even valid Protobuf is withheld whole", () => {
    const broken = new Uint8Array([...encoder.encode(SECRET), 0xff, 0xff, 0xff]);
    const kept = redactDeadLetter("compozy.c1.tool.cmds.t1.execute", broken);
    assert.equal(kept.data.length, 0);
    assert.match(kept.redacted ?? "", /the whole payload \(23 bytes\)/);
    const event = redactDeadLetter("compozy.c1.task.evts.t1.success", broken);
    assert.deepEqual(event, { data: broken }, "messages without secrets are kept as they came");
  });

  await t.step("through the bus: an undecodable ToolExecute reaches the DLQ redacted", async () => {
    const nats = await startTestNats();
    const nc = await connectNats(nats.url, { name: "dlq-redaction-test" });
    try {
      await provisionJetStream(nc);
      const bus = new Bus(nc, { source: "test" });
      const sub = bus.serve("compozy.*.tool.cmds.*.execute", "q", ToolExecuteResultSchema, () => {
        throw new Error("the handler must not see an undecodable request");
      });
      const subject = "compozy.c1.tool.cmds.t1.execute";
      const reply = await nc.request(subject, undecodableToolExecute(), { timeout: 5_000 });
      assert.ok(reply.headers, "the requester gets an error reply");
      sub.unsubscribe();
      const jsm = await jetstreamManager(nc);
      const dead = await jsm.streams.getMessage(STREAMS.deadLetters, {
        last_by_subj: "compozy.dlq.tool.cmds",
      });
      assert.ok(dead);
      assert.ok(!contains(dead.data, SECRET), "no env value in the dead letter");
      assert.ok(contains(dead.data, "SECRET_TOKEN"), "the names stay, to debug with");
      assert.equal(dead.header.get(DLQ_REDACTED_HEADER), "env values");
    } finally {
      await nc.close();
      await nats.stop();
    }
  });
});

Deno.test("the runtime never reports a call's env values in its logs or failure", async () => {
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    const tool = dir.tool(
      "leaky",
      `export default (mode: string) => {
         const secret = Deno.env.get("SECRET_TOKEN")!;
         console.log("using " + secret);
         console.error({ token: secret });
         if (mode === "throw") throw new Error("rejected token " + secret, { cause: secret });
         if (mode === "throw_value") throw { token: secret };
         return { echoed: secret };
       };`,
    );
    const options = { permissions: { env: ["SECRET_TOKEN"] }, env: { SECRET_TOKEN: SECRET } };
    const logs: string[] = [];
    const ok = await runner.run(call(tool, "ok", { ...options, onLog: (e) => logs.push(e.message) }));
    assert.deepEqual(ok.ok && ok.output, { echoed: SECRET }, "the output is data the workflow asked for");
    assert.equal(logs.length, 2);
    assert.ok(logs.every((line) => !line.includes(SECRET) && line.includes(REDACTED)), logs.join("\n"));

    for (const mode of ["throw", "throw_value"]) {
      const failed = await runner.run(call(tool, mode, options));
      assert.ok(!failed.ok);
      const reported = JSON.stringify({ message: failed.failure.message, details: failed.failure.details });
      assert.ok(!reported.includes(SECRET), reported);
      assert.ok(reported.includes(REDACTED), reported);
      assert.equal(
        failed.failure.cause,
        undefined,
        "the tool's own error, which holds the value, is dropped",
      );
    }
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("env values are masked as console.log and JSON spell them too (brk38)", async () => {
  // A password holding a backslash and quotes, and a key of several lines: console.log of an object and
  // JSON.stringify escape them, and console.log prints a long string of several lines one piece per line.
  // Before, only the value as is was masked, and each of these lines held the value whole.
  const password = 'pa"ss\\w0rd-99';
  const key = `-----BEGIN PRIVATE KEY-----\n${"A1b2C3d4".repeat(8)}\n${
    "Z9y8X7w6".repeat(8)
  }\n-----END PRIVATE KEY-----\n`;
  const dir = new ToolDir();
  const runner = new ToolRunner();
  try {
    const tool = dir.tool(
      "careless",
      `export default (mode: string) => {
         const config = { password: Deno.env.get("DB_PASSWORD")!, key: Deno.env.get("SIGNING_KEY")! };
         console.log(config);
         console.log(JSON.stringify(config));
         console.error([config.password], config.key);
         if (mode === "throw_value") throw config;
         return "done";
       };`,
    );
    const options = {
      permissions: { env: ["DB_PASSWORD", "SIGNING_KEY"] },
      env: { DB_PASSWORD: password, SIGNING_KEY: key },
    };
    const logs: string[] = [];
    const ok = await runner.run(call(tool, "ok", { ...options, onLog: (e) => logs.push(e.message) }));
    assert.ok(ok.ok);
    assert.equal(logs.length, 3);
    const failed = await runner.run(call(tool, "throw_value", options));
    assert.ok(!failed.ok);
    const reported = [...logs, failed.failure.message, JSON.stringify(failed.failure.details)].join("\n");
    for (const piece of ["w0rd-99", "A1b2C3d4", "Z9y8X7w6"]) {
      assert.ok(!reported.includes(piece), `${piece} in:\n${reported}`);
    }
    assert.ok(logs.every((line) => line.includes(REDACTED)), logs.join("\n"));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test("a line cut at the call's log budget inside an env value keeps none of it (brk38)", async () => {
  // A call may log 1,024 bytes here, a line costing 256 more: the first line is cut after 768 bytes, 8 bytes
  // into the value. Before, those 8 bytes ("tok-very") went into the logs.
  const dir = new ToolDir();
  const runner = new ToolRunner({ maxLogBytes: 1024 });
  try {
    const tool = dir.tool(
      "chatty",
      `export default () => { console.log("x".repeat(760) + Deno.env.get("SECRET_TOKEN")); return 1; };`,
    );
    const logs: string[] = [];
    const ok = await runner.run(call(tool, null, {
      permissions: { env: ["SECRET_TOKEN"] },
      env: { SECRET_TOKEN: SECRET },
      onLog: (e) => logs.push(e.message),
    }));
    assert.ok(ok.ok);
    assert.equal(logs[0], "x".repeat(760) + REDACTED, logs.join("\n"));
  } finally {
    await runner.close();
    dir.cleanup();
  }
});

Deno.test({
  name: "an execution's state and history do not hold env values",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startEngineHarness({
      "compozy.yaml": `name: secrets\nversion: 0.1.0\nworkflows:\n  - source: ./workflows/leak.yaml\n`,
      "workflows/leak.yaml": `id: leak
version: 0.1.0
config:
  input: { type: object, properties: { mode: { type: string } }, required: [mode] }
env:
  SECRET_TOKEN: "${SECRET}"
tools:
  - id: leaky
    execute: ./tools/leaky.ts
    permissions:
      env: [SECRET_TOKEN]
tasks:
  - id: leak
    use: tool(id=leaky)
    with:
      mode: "{{ .workflow.input.mode }}"
    final: true
`,
      "workflows/tools/leaky.ts": `export default (input: { mode: string }) => {
  const secret = Deno.env.get("SECRET_TOKEN")!;
  console.log("using " + secret);
  if (input.mode === "throw") throw new Error("rejected token " + secret);
  return { length: secret.length };
};
`,
    });
    const runtime = startRuntime({ nc: h.nc, bus: h.bus });
    const json = (value: unknown) =>
      JSON.stringify(
        value,
        (_k, v) => typeof v === "bigint" ? String(v) : v instanceof Uint8Array ? decoder.decode(v) : v,
      );
    try {
      for (const mode of ["ok", "throw"]) {
        const { execId } = await h.engine.client.trigger("leak", { mode });
        const state = await h.engine.client.waitForEnd(execId, 60_000);
        assert.equal(state.status, mode === "ok" ? "SUCCESS" : "FAILED", json(state));
        const history = await h.engine.client.events(execId);
        assert.ok(!json(state).includes(SECRET), `state holds the value: ${json(state)}`);
        assert.ok(!json(history).includes(SECRET), `history holds the value: ${json(history)}`);
        if (mode === "throw") assert.ok(json(state).includes(`rejected token ${REDACTED}`), json(state));
      }
    } finally {
      await runtime.stop();
      await h.close();
    }
  },
});
