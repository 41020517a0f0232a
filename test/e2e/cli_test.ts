/**
 * The CLI without a running server: `init` scaffolds a project that validates and builds, every command
 * has `--help`, and errors are one line with the documented exit codes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./support/dev_server.ts";

Deno.test("compozy init scaffolds a project that validates and builds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compozy-init-" });
  try {
    const init = await runCli(["init", join(dir, "my-app")]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /created project 'my-app'/);
    // The hints name the new project's folder, not the current one.
    assert.match(init.stdout, /cp \S*my-app\/\.env\.example \S*my-app\/\.env/);
    // From a checkout there is no `compozy` on PATH: the hint is the command that works there.
    assert.match(init.stdout, /^ {2}deno task compozy dev --cwd \S*my-app --watch$/m);
    const root = join(dir, "my-app");
    for (
      const file of [
        "compozy.yaml",
        "workflows/greeter.yaml",
        "workflows/tools/format_greeting.ts",
        ".env.example",
      ]
    ) {
      await Deno.stat(join(root, file));
    }
    assert.match(
      await Deno.readTextFile(join(root, "compozy.yaml")),
      /# yaml-language-server: \$schema=\.\/schemas\/compozy\.json/,
    );
    await Deno.stat(join(root, "schemas/workflow.json"));
    const validate = await runCli(["validate", "--cwd", root], { OPENAI_API_KEY: "" });
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);
    const build = await runCli(["build", "--cwd", root]);
    assert.equal(build.code, 0, build.stderr);
    const bundle = JSON.parse(await Deno.readTextFile(join(root, "dist/my-app-0.1.0.compozy.json")));
    assert.equal(bundle.format, "compozy-bundle/1");
    assert.ok(bundle.files["workflows/greeter.yaml"]);
    assert.match(bundle.files["workflows/tools/format_greeting.ts"], /function formatGreeting/);
    assert.ok(!(".env.example" in bundle.files), "env files are not bundled");
    const again = await runCli(["init", root]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every command has --help", async () => {
  const commands = [
    [],
    ["init"],
    ["dev"],
    ["start"],
    ["validate"],
    ["run"],
    ["executions"],
    ["executions", "list"],
    [
      "executions",
      "show",
    ],
    ["executions", "cancel"],
    ["executions", "signal"],
    ["executions", "logs"],
    ["executions", "pause"],
    ["executions", "resume"],
    ["executions", "rerun"],
    ["build"],
    ["deploy"],
    ["schemagen"],
  ];
  const results = await Promise.all(commands.map((c) => runCli([...c, "--help"])));
  results.forEach((r, i) => {
    assert.equal(r.code, 0, `${commands[i].join(" ")} --help: ${r.stderr}`);
    assert.match(r.stdout, /Usage: compozy/);
    if (commands[i][0] !== "executions" || commands[i].length > 1) assert.match(r.stdout, /--cwd|Commands:/);
    if (commands[i].length > 0 && (commands[i][0] !== "executions" || commands[i].length > 1)) {
      assert.match(
        r.stdout,
        /Examples:\n {2}\$ deno task compozy /,
        `${commands[i].join(" ")} --help has examples, as run from a checkout`,
      );
    }
  });
  assert.match(results[0].stdout, /Getting started:\n {2}\$ deno task compozy init my-app\n/);
});

Deno.test("errors are one clear line with exit code 1 for user errors", async (t) => {
  await t.step("an invalid project lists every problem", async () => {
    const dir = await Deno.makeTempDir({ prefix: "compozy-bad-" });
    await Deno.writeTextFile(join(dir, "compozy.yaml"), "name: Bad Name\n");
    const res = await runCli(["validate", "--cwd", dir]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /compozy\.yaml:1:\d+: name: /);
    await Deno.remove(dir, { recursive: true });
  });
  await t.step(
    "a read grant covering the NATS credentials file is refused by validate (breaker2 D5)",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "compozy-creds-grant-" });
      try {
        await Deno.mkdir(join(dir, "secrets"));
        await Deno.writeTextFile(join(dir, "secrets/engine.creds"), "jwt and seed\n");
        await Deno.writeTextFile(
          join(dir, "compozy.yaml"),
          "name: creds\nworkflows:\n  - source: ./wf.yaml\n",
        );
        await Deno.writeTextFile(join(dir, "t.ts"), "export default () => 1;\n");
        await Deno.writeTextFile(
          join(dir, "wf.yaml"),
          `id: wf\ntools:\n  - id: t\n    execute: ./t.ts\n    permissions: { read: ["./secrets"] }\n` +
            `tasks:\n  - { id: a, use: tool(id=t) }\n`,
        );
        const valid = await runCli(["validate", "--cwd", dir], { NATS_CREDS: "" });
        assert.equal(valid.code, 0, valid.stdout + valid.stderr);
        const res = await runCli(["validate", "--cwd", dir], {
          NATS_CREDS: join(dir, "secrets/engine.creds"),
        });
        assert.equal(res.code, 1, res.stdout + res.stderr);
        assert.match(res.stderr, /wf\.yaml:\d+:\d+: .*engine\.creds/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
  await t.step("no server to talk to", async () => {
    const res = await runCli(["executions", "list", "--server", "http://127.0.0.1:9"]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: Cannot reach the Compozy server at http:\/\/127\.0\.0\.1:9/);
  });
  await t.step("a --server that is no server URL, or no Compozy server: one line, exit 1", async () => {
    // Once "Url scheme 'localhost' not supported" for localhost:3001, and an internal error with a stack
    // trace for a URL with a query (the path was glued after it) or a server answering 200 with HTML.
    for (
      const server of [
        "localhost:3001",
        "ftp://127.0.0.1:9",
        "http://127.0.0.1:9/?x=1",
        "http://127.0.0.1:9#top",
      ]
    ) {
      const res = await runCli(["executions", "list", "--server", server]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /^error: Invalid server URL '/, res.stderr);
    }
    const other = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen: () => {} },
      () =>
        new Response("<!doctype html><p>some other web server</p>", {
          headers: { "content-type": "text/html" },
        }),
    );
    try {
      const res = await runCli(["executions", "list", "--server", `http://127.0.0.1:${other.addr.port}`]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /^error: .*not JSON.*is it a Compozy server\?/);
      assert.doesNotMatch(res.stderr, /internal error/);
    } finally {
      await other.shutdown();
    }
  });
  await t.step("bad flags", async () => {
    const res = await runCli(["run", "hello", "--input", "{not json", "--server", "http://127.0.0.1:9"]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /--input is not valid JSON/);
    const role = await runCli(["start", "--role", "bogus"]);
    assert.equal(role.code, 1);
    const port = await runCli(["dev", "--port", "70000"]);
    assert.equal(port.code, 1);
    assert.match(port.stderr, /Invalid port '70000'/);
    // Both targets of a signal: said as such, not as if neither were given.
    const both = await runCli([
      "executions",
      "signal",
      "go",
      "--exec",
      "x",
      "--all",
      "--server",
      "http://127.0.0.1:9",
    ]);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /^error: --exec and --all exclude each other/);
  });
  await t.step(
    "an empty id, key or folder (an unset shell variable in quotes) is refused, naming it",
    async () => {
      const empty = await Deno.makeTempDir({ prefix: "compozy-empty-arg-" });
      // Once: `--workflow ""` listed every workflow's executions, `--idempotency-key ""` started without the
      // key (a retried script started twice), and an empty <exec_id> was "No route for GET /api/executions/".
      for (
        const [args, name] of <[string[], string][]> [
          [["executions", "list", "--workflow", ""], "--workflow"],
          [["executions", "list", "--cursor", ""], "--cursor"],
          [["run", "hello", "--idempotency-key", ""], "--idempotency-key"],
          [["run", ""], "workflow"],
          [["executions", "show", ""], "exec_id"],
          [["executions", "logs", " "], "exec_id"],
          [["executions", "cancel", ""], "exec_id"],
          [["executions", "pause", ""], "exec_id"],
          [["executions", "resume", ""], "exec_id"],
          [["executions", "rerun", ""], "exec_id"],
          [["executions", "signal", "", "--all"], "signal_id"],
          [["executions", "signal", "go", "--exec", ""], "--exec"],
          // Folders: `--out ""` wrote the bundle or the schemas into the project folder itself, `init ""`
          // scaffolded the current folder.
          [["build", "--out", ""], "--out"],
          [["schemagen", "--out", ""], "--out"],
          [["init", ""], "dir"],
        ]
      ) {
        const remote = args[0] === "run" || args[0] === "executions";
        const res = await runCli([
          ...args,
          ...(remote ? ["--server", "http://127.0.0.1:9"] : ["--cwd", empty]),
        ]);
        assert.equal(res.code, 1, `${args.join(" ")}: ${res.stderr}`);
        assert.ok(
          res.stderr.includes(`'${name}`) && /empty/.test(res.stderr),
          `${args.join(" ")}: ${res.stderr}`,
        );
      }
      // Nothing was written where the empty folder pointed.
      assert.deepEqual(await Array.fromAsync(Deno.readDir(empty)), []);
      await Deno.remove(empty);
    },
  );
  await t.step("dev --run with a workflow the project lacks: said before anything starts", async () => {
    const dir = await Deno.makeTempDir({ prefix: "compozy-run-typo-" });
    try {
      await runCli(["init", join(dir, "app")]);
      const res = await runCli(["dev", "--cwd", join(dir, "app"), "--port", "0", "--run", "greeterr"]);
      assert.equal(res.code, 1, res.stdout + res.stderr);
      assert.match(
        res.stderr,
        /--run greeterr: no workflow 'greeterr' in this project \(did you mean "greeter"\?\)/,
      );
      assert.match(res.stderr, /Its workflows: greeter/);
      // --run's input is read before anything starts too: bad JSON once came after the start, naming no
      // flag ("could not run greeter: Expected property name…"), and --input without --run was dropped.
      const badInput = await runCli(
        ["dev", "--cwd", join(dir, "app"), "--port", "0", "--run", "greeter", "--input", "{bad"],
      );
      assert.equal(badInput.code, 1, badInput.stdout + badInput.stderr);
      assert.match(badInput.stderr, /^error: --input is not valid JSON/);
      const inputAlone = await runCli(["dev", "--cwd", join(dir, "app"), "--port", "0", "--input", "{}"]);
      assert.equal(inputAlone.code, 1, inputAlone.stdout + inputAlone.stderr);
      assert.match(inputAlone.stderr, /^error: --input is the input of --run/);
      // Nothing started: no NATS store was made.
      await assert.rejects(Deno.stat(join(dir, "app/.compozy/nats")), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step(
    "a timing variable that is not a number of milliseconds: said before anything starts",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "compozy-bad-env-" });
      try {
        await runCli(["init", join(dir, "app")]);
        // An engine's and a runtime's (the runtime child crash-looped on the latter: breaker2 D4).
        for (const variable of ["COMPOZY_RUNTIME_SILENT_AFTER_MS", "COMPOZY_SANDBOX_START_TIMEOUT_MS"]) {
          const res = await runCli(["dev", "--cwd", join(dir, "app"), "--port", "0"], { [variable]: "10s" });
          assert.equal(res.code, 1, res.stdout + res.stderr);
          assert.match(
            res.stderr,
            new RegExp(
              `^error: ${variable} must be a positive whole number of milliseconds up to 2147483647, got '10s'$`,
              "m",
            ),
          );
        }
        await assert.rejects(Deno.stat(join(dir, "app/.compozy/nats")), Deno.errors.NotFound);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
  await t.step(
    "start with a bad --host or --instance-id: a user error naming it, not an internal one",
    async () => {
      // Once exit 2, "error: internal error: invalid host 'not a host'…" (or "Cannot configure logging:
      // Invalid instance id…") and five lines of stack trace.
      const dir = await Deno.makeTempDir({ prefix: "compozy-bad-start-" });
      try {
        await runCli(["init", join(dir, "app")]);
        const start = (...args: string[]) =>
          runCli(["start", "--cwd", join(dir, "app"), "--port", "0", ...args]);
        const host = await start("--host", "not a host");
        assert.equal(host.code, 1, host.stdout + host.stderr);
        assert.match(host.stderr, /^error: cannot listen on 'not a host' \(--host or COMPOZY_HOST\): /);
        assert.doesNotMatch(host.stderr, /internal error|\bat /);
        for (
          const [args, env, name] of <[string[], Record<string, string>, string][]> [
            [["--instance-id", "a.b"], {}, "--instance-id"],
            [[], { COMPOZY_INSTANCE_ID: "one two" }, "COMPOZY_INSTANCE_ID"],
          ]
        ) {
          const res = await runCli(["start", "--cwd", join(dir, "app"), "--port", "0", ...args], env);
          assert.equal(res.code, 1, res.stdout + res.stderr);
          assert.match(
            res.stderr,
            new RegExp(`^error: Invalid ${name} '[^']+': a subject token cannot contain`),
          );
          assert.doesNotMatch(res.stderr, /internal error|\bat /);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
  await t.step("an API key that is empty or has white space is refused before anything starts", async () => {
    // Once `--api-key ""` (an unset variable in quotes) served the API with no auth at all, and a key with a
    // space served one no `Authorization: Bearer` header can carry (every request 401).
    const nats = { NATS_URL: "nats://127.0.0.1:9" };
    for (
      const [args, env, name] of <[string[], Record<string, string>, string][]> [
        [["--api-key", ""], nats, "--api-key"],
        [["--api-key", "two words"], nats, "--api-key"],
        [[], { ...nats, COMPOZY_API_KEY: "two words" }, "COMPOZY_API_KEY"],
      ]
    ) {
      const res = await runCli(["start", "--role", "api", "--port", "0", ...args], env);
      assert.equal(res.code, 1, res.stdout + res.stderr);
      assert.ok(res.stderr.includes(name) && /empty|white space/.test(res.stderr), res.stderr);
      assert.doesNotMatch(res.stderr, /Cannot connect to NATS/);
    }
  });
  await t.step("a role other than all needs NATS_URL", async () => {
    const res = await runCli(["start", "--role", "engine"], { NATS_URL: "" });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /--role engine needs NATS_URL/);
  });
});
