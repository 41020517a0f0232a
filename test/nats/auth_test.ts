/**
 * The managed nats-server's users (pkg/nats/auth.ts) against a real server: nobody gets in without a user,
 * the runtime reaches only what it serves, each role reads only its own replies, and messages up to the
 * raised max_payload pass.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BUCKETS,
  connectNats,
  credentialsEnv,
  credentialsFromEnv,
  DEFAULT_MAX_PAYLOAD_BYTES,
  NATS_ROLES,
  NatsUnavailableError,
  provisionJetStream,
  rolePermissions,
  splitCredentials,
} from "../../pkg/nats/mod.ts";
import { startTestNats, type TestNats } from "../support/nats.ts";

async function withNats(fn: (nats: TestNats) => Promise<void>): Promise<void> {
  const nats = await startTestNats();
  try {
    await fn(nats);
  } finally {
    await nats.stop();
  }
}

/** The server's answer to a subscription: `ok` once a round trip passed without a violation. */
async function subscribeOutcome(nc: NatsConnection, subject: string): Promise<string> {
  const refused = Promise.withResolvers<string>();
  const sub = nc.subscribe(subject, {
    callback: (err) => {
      if (err) refused.resolve(err.message);
    },
  });
  // Permission errors arrive before the PONG of a flush that follows the SUB; give them one more round trip.
  await nc.flush();
  await nc.flush();
  sub.unsubscribe();
  return await Promise.race([refused.promise, Promise.resolve("ok")]);
}

/** The violation the server reports for a publish, or `ok` if none came back. */
async function publishOutcome(nc: NatsConnection, subject: string): Promise<string> {
  const errors: string[] = [];
  const watching = (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error") errors.push(String((s as { error: Error }).error.message));
    }
  })();
  nc.publish(subject, new Uint8Array([1]));
  await nc.flush();
  await nc.flush();
  void watching;
  return errors.find((e) => e.includes(subject)) ?? "ok";
}

Deno.test("auth: an anonymous client is refused", async () => {
  await withNats(async (nats) => {
    const attempt = connectNats(nats.plainUrl, { connectTimeoutMs: 2_000 });
    await assert.rejects(attempt, (e: unknown) => {
      assert.ok(e instanceof NatsUnavailableError);
      assert.match(e.message, /Authorization Violation/);
      // The error names the server without any credentials.
      assert.doesNotMatch(e.message, /@/);
      return true;
    });
  });
});

Deno.test("auth: wrong password is refused at once, credentials never printed", async () => {
  await withNats(async (nats) => {
    const url = nats.plainUrl.replace("://", "://compozy-runtime:not-the-password@");
    await assert.rejects(connectNats(url, { connectTimeoutMs: 2_000 }), (e: unknown) => {
      assert.match(String(e), /Authorization Violation/);
      assert.doesNotMatch(String(e), /not-the-password/);
      return true;
    });
  });
});

Deno.test("auth: the config file holds the passwords and only its owner may read it", async () => {
  await withNats(async (nats) => {
    const info = await Deno.stat(`${nats.storeDir}/nats-server.conf`);
    assert.equal(info.mode! & 0o777, 0o600);
    const text = await Deno.readTextFile(`${nats.storeDir}/nats-server.conf`);
    assert.ok(text.includes(nats.auth.users.runtime.pass));
  });
});

Deno.test("auth: the runtime cannot read workflow commands, KV, the JetStream API or others' replies", async () => {
  await withNats(async (nats) => {
    const admin = await connectNats(nats.url, { name: "admin" });
    await provisionJetStream(admin);
    const runtime = await nats.connectAs("runtime");
    try {
      for (
        const subject of [
          ">",
          "compozy.>",
          "compozy.*.workflow.cmds.*.execute",
          "compozy.*.task.cmds.*.resume",
          "compozy.*.*.evts.*.*",
          "$KV.>",
          `$KV.${BUCKETS.taskExecutions}.>`,
          "_INBOX.>",
          "_INBOX_engine.>",
          "_INBOX_api.>",
        ]
      ) {
        assert.match(
          await subscribeOutcome(runtime, subject),
          /Permissions Violation for Subscription/,
          subject,
        );
      }
      for (
        const subject of [
          `$JS.API.STREAM.INFO.KV_${BUCKETS.taskExecutions}`,
          `$JS.API.DIRECT.GET.KV_${BUCKETS.workflowExecutions}`,
          "$JS.API.STREAM.DELETE.EVENTS",
          `$KV.${BUCKETS.leases}.x`,
          "compozy.e1.workflow.cmds.e1.cancel",
          "compozy.e1.tool.cmds.t1.execute",
        ]
      ) {
        assert.match(await publishOutcome(runtime, subject), /Permissions Violation for Publish/, subject);
      }
      // What it needs: its own commands, its health subject, its own replies.
      for (
        const subject of [
          "compozy.*.tool.cmds.*.execute",
          "compozy.*.agent.cmds.*.execute",
          "compozy.runtime.calls.*",
          "compozy.health.runtime",
          "_INBOX_runtime.>",
        ]
      ) {
        assert.equal(await subscribeOutcome(runtime, subject), "ok", subject);
      }
      // KV through the client: refused, not silently empty.
      const kv = await new Kvm(runtime).open(BUCKETS.workflowExecutions);
      await assert.rejects(kv.get("e1"));
    } finally {
      await runtime.close();
      await admin.close();
    }
  });
});

Deno.test("auth: engine and runtime talk through their own inboxes, with messages up to max_payload", async () => {
  await withNats(async (nats) => {
    const admin = await connectNats(nats.url, { name: "admin" });
    await provisionJetStream(admin);
    const engine = await nats.connectAs("engine");
    const runtime = await nats.connectAs("runtime");
    const api = await nats.connectAs("api");
    try {
      assert.equal(engine.info?.max_payload, DEFAULT_MAX_PAYLOAD_BYTES);
      // The runtime answers a request from the engine (into the engine's inbox), here with a 5 MiB reply: more than
      // a 4 MiB sandbox output, less than max_payload.
      const big = new Uint8Array(5 * 1024 * 1024).fill(7);
      runtime.subscribe("compozy.*.tool.cmds.*.execute", {
        queue: "compozy-runtime",
        callback: (_e, msg) => {
          assert.ok(msg.reply?.startsWith("_INBOX_engine."), msg.reply);
          msg.respond(big);
        },
      });
      await runtime.flush();
      const reply = await engine.request("compozy.e1.tool.cmds.t1.execute", big, { timeout: 5_000 });
      assert.equal(reply.data.length, big.length);
      // The runtime's JetStream publishes (dead letters) are acknowledged to its own inbox.
      const { jetstream } = await import("@nats-io/jetstream");
      const ack = await jetstream(runtime).publish("compozy.dlq.tool.cmds", new Uint8Array([1]));
      assert.equal(ack.stream, "DLQ");
      // The runtime reads and writes agents' memory, and no other bucket.
      const memory = await new Kvm(runtime).open(BUCKETS.agentMemory);
      await memory.create("k", new Uint8Array([1]));
      assert.deepEqual((await memory.get("k"))?.value, new Uint8Array([1]));
      await assert.rejects((await new Kvm(runtime).open(BUCKETS.workflowExecutions)).get("none"));
      // The API reads state (KV) but cannot read the engine's replies.
      await (await new Kvm(api).open(BUCKETS.workflowExecutions)).get("none");
      assert.match(await subscribeOutcome(api, "_INBOX_engine.>"), /Permissions Violation/);
      assert.match(await subscribeOutcome(api, "compozy.*.tool.cmds.*.execute"), /Permissions Violation/);
    } finally {
      await Promise.all([engine.close(), runtime.close(), api.close(), admin.close()]);
    }
  });
});

Deno.test("auth: credentials come from the URL, else from the environment", () => {
  assert.deepEqual(splitCredentials("nats://u:p%40ss@a:4222,nats://b:4222"), {
    servers: ["nats://a:4222", "nats://b:4222"],
    auth: { user: "u", pass: "p@ss" },
  });
  assert.deepEqual(splitCredentials("nats://tok@a:4222").auth, { token: "tok" });
  assert.deepEqual(splitCredentials("a:4222"), { servers: ["a:4222"], auth: undefined });
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.deepEqual(credentialsFromEnv(env({ NATS_CREDS: "/x.creds", NATS_USER: "u" })), {
    credsFile: "/x.creds",
  });
  assert.deepEqual(credentialsFromEnv(env({ NATS_USER: "u", NATS_PASSWORD: "p" })), { user: "u", pass: "p" });
  assert.deepEqual(credentialsFromEnv(env({ NATS_TOKEN: "t" })), { token: "t" });
  assert.equal(credentialsFromEnv(env({})), undefined);
  // What a parent hands its child reads back the same, and blanks an inherited creds file.
  const handed = credentialsEnv({ user: "u", pass: "p" });
  assert.deepEqual(credentialsFromEnv(env(handed)), { user: "u", pass: "p" });
});

Deno.test("auth: the users of docs/operations.md's cluster example are the roles' permissions", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/operations.md", import.meta.url));
  const users = /```conf\n(max_payload[\s\S]*?)```/.exec(doc)![1];
  for (const role of NATS_ROLES) {
    const block = new RegExp(`user: compozy-${role},[\\s\\S]*?\\} \\} \\}`).exec(users)![0];
    const list = (kind: string) =>
      JSON.parse(
        new RegExp(`${kind}: \\{ allow: (\\[[\\s\\S]*?\\]) \\}`).exec(block)![1].replace(/\s+/g, " "),
      );
    const wanted = rolePermissions(role);
    assert.deepEqual(list("publish"), wanted.publish, `${role} publish`);
    assert.deepEqual(list("subscribe"), wanted.subscribe, `${role} subscribe`);
    // allow_responses makes nats-server 2.9 track every delivery's reply subject (see auth.ts): never used.
    assert.ok(!block.includes("allow_responses"), `${role} allow_responses`);
  }
});
