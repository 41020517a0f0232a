/** The `nats:` section of compozy.yaml and COMPOZY_NATS_REPLICAS, from the file to provisioning. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, formatDiagnostic, loadProject } from "../engine/domain/project/mod.ts";
import { parseSize } from "../engine/domain/project/nats_config.ts";
import { BUCKETS, STREAMS } from "../pkg/nats/mod.ts";
import { CliError } from "./cli_error.ts";
import { Stack } from "./stack.ts";
import { natsLinkFor, provisionOptions } from "./stack_nats.ts";
import { versionInfo } from "./version.ts";

async function projectWith(nats: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compozy-nats-config-" });
  await Deno.mkdir(join(dir, "workflows"));
  await Deno.writeTextFile(
    join(dir, "compozy.yaml"),
    `name: demo\nworkflows: [{ source: ./workflows/w.yaml }]\n${nats}`,
  );
  await Deno.writeTextFile(
    join(dir, "workflows/w.yaml"),
    "id: w\ntasks: [{ id: s, type: sleep, duration: 1s }]\n",
  );
  return dir;
}

const noEnv = () => undefined;

Deno.test("nats config: agent_memory.max_age becomes the memory bucket's TTL", async () => {
  const dir = await projectWith("nats:\n  agent_memory: { max_age: 7d }\n");
  try {
    const { config } = await loadProject(dir);
    assert.deepEqual(provisionOptions(config.nats, noEnv).ttlMs, { [BUCKETS.agentMemory]: 7 * 86_400_000 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats config: replicas and stream limits become provisioning options; the env wins", async () => {
  const dir = await projectWith(
    "nats:\n  replicas: 3\n  streams:\n    events: { max_age: 90d, max_bytes: 10GB }\n    logs: { max_bytes: 1048576 }\n",
  );
  try {
    const { config } = await loadProject(dir);
    assert.deepEqual(provisionOptions(config.nats, noEnv), {
      replicas: 3,
      maxAgeMs: { [STREAMS.events]: 90 * 86_400_000 },
      maxBytes: { [STREAMS.events]: 10 * 1024 ** 3, [STREAMS.logs]: 1_048_576 },
    });
    const env = (value: string) => (name: string) => name === "COMPOZY_NATS_REPLICAS" ? value : undefined;
    assert.equal(provisionOptions(config.nats, env("1")).replicas, 1);
    assert.equal(provisionOptions(config.nats, env("")).replicas, 3);
    for (const bad of ["0", "6", "three", "1.5"]) {
      assert.throws(() => provisionOptions(config.nats, env(bad)), (e: unknown) => {
        assert.ok(e instanceof CliError);
        assert.match(
          e.message,
          new RegExp(`Invalid COMPOZY_NATS_REPLICAS=${bad.replace(".", "\\.")}: expected`),
        );
        return true;
      });
    }
    assert.deepEqual(provisionOptions(undefined, noEnv), { replicas: undefined, maxAgeMs: {}, maxBytes: {} });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats config: bad values are named at their line", async () => {
  const dir = await projectWith(
    "nats:\n  replicas: 4.5\n  streams:\n    events: { max_bytes: 10 GB }\n    tasks: {}\n",
  );
  try {
    await assert.rejects(loadProject(dir), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const text = e.diagnostics.map((d) => formatDiagnostic(d)).join("\n");
      assert.match(text, /:4:\d+: nats\.replicas: expected an integer/);
      assert.match(
        text,
        /:6:\d+: nats\.streams\.events\.max_bytes: expected a size in bytes or such as 512MB/,
      );
      assert.match(text, /:7:\d+: nats\.streams\.tasks: unknown field/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(parseSize("512MB"), 512 * 1024 ** 2);
  assert.equal(parseSize(4096), 4096);
  assert.throws(() => parseSize("0"), /Cannot parse size "0"/);
});

Deno.test({
  name: "nats config: compozy dev with replicas: 3 on its single managed server stops with a clear error",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await projectWith("nats: { replicas: 3 }\n");
    try {
      await assert.rejects(
        Stack.start({
          role: "all",
          projectDir: dir,
          stateDir: join(dir, ".compozy"),
          port: 0,
          hostname: "127.0.0.1",
          instanceId: "replicas-test",
          version: versionInfo(),
        }),
        /Cannot provision 3 replicas: the NATS server .* is a single node/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("stack nats: with NATS_URL the runtime child gets the stack's credentials, inbox prefix and no password in argv", async () => {
  const all = await natsLinkFor({
    role: "all",
    natsUrl: "nats://compozy-engine:s3cret@10.0.0.1:4222",
    stateDir: "/x",
  });
  assert.equal(all.url, "nats://10.0.0.1:4222");
  assert.deepEqual(all.auth, { user: "compozy-engine", pass: "s3cret" });
  // The child runs with the engine's user, so it must receive its replies under the engine's prefix.
  assert.deepEqual(all.runtimeEnv, {
    NATS_CREDS: "",
    NATS_USER: "compozy-engine",
    NATS_PASSWORD: "s3cret",
    NATS_INBOX_PREFIX: "_INBOX_engine",
  });
  const runtime = await natsLinkFor({ role: "runtime", natsUrl: "nats://10.0.0.1:4222", stateDir: "/x" });
  assert.deepEqual(runtime.runtimeEnv, { NATS_INBOX_PREFIX: "_INBOX_runtime" });
});
