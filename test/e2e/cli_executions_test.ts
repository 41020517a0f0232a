/**
 * The CLI's view of executions against a real `compozy dev` (real NATS, engine, runtime, HTTP):
 * `run --wait` lines, `executions show` of a waiting execution, `logs`, `pause`/`resume`, `rerun`,
 * `--status` in any case, an unknown `--workflow`, a signal's count of waits, `--watch` messages — with the
 * dev process in its compiled-binary mode (`COMPOZY_AS_COMPILED=1`): the runtime is this program run again
 * with its hidden `__runtime` command, and sandboxes use the `deno` on PATH to run the bundles of their
 * modules that it wrote to the cache folder.
 *
 * Also `dev` refusing a folder without a project and a busy port, before it starts anything.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyProject, FIXTURE_PROJECT, runCli, startDev } from "./support/dev_server.ts";

const post = (body: unknown): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

Deno.test("dev refuses a folder without compozy.yaml and a busy port, naming the way out", async (t) => {
  await t.step("no compozy.yaml: --cwd or compozy init", async () => {
    const dir = await Deno.makeTempDir({ prefix: "compozy-empty-" });
    try {
      const dev = await runCli(["dev", "--cwd", dir]);
      assert.equal(dev.code, 1);
      assert.match(dev.stderr, /error: no compozy\.yaml in /);
      assert.match(dev.stderr, /--cwd <dir>/);
      assert.match(dev.stderr, /compozy init <dir>/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("a busy port is named, with --port", async () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const dev = await runCli(["dev", "--cwd", FIXTURE_PROJECT, "--port", String(port)]);
    assert.equal(dev.code, 1);
    assert.match(dev.stderr, new RegExp(`error: port ${port} is already in use`));
    assert.match(dev.stderr, new RegExp(`--port ${port + 1}`));
  });
});

Deno.test({
  name: "the CLI inspects and controls executions on a compozy dev in compiled-binary mode",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await copyProject(FIXTURE_PROJECT);
    const cacheDir = await Deno.makeTempDir({ prefix: "compozy-cache-" });
    await Deno.writeTextFile(
      join(dir, "workflows/tools/greet.ts"),
      "export default (input: { name: string }) => {\n  console.log(`greeting ${input.name}`);\n" +
        "  return { greeting: `Hello, ${input.name}!` };\n};\n",
    );
    const dev = await startDev({
      dir,
      args: ["--watch"],
      env: {
        COMPOZY_AS_COMPILED: "1",
        COMPOZY_CACHE_DIR: cacheDir,
        COMPOZY_LOG_LEVEL: "info",
        HOOK_SECRET: "s",
      },
    });
    const cli = (...args: string[]) => runCli([...args, "--server", dev.url]);
    const state = async (execId: string) => await (await dev.fetch(`/api/executions/${execId}`)).json();
    const until = async (execId: string, status: string) => {
      for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
        const s = await state(execId);
        if (s.status === status) return s;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${execId} never became ${status}: ${JSON.stringify(await state(execId))}`);
    };
    try {
      let helloExec = "";
      await t.step(
        "the runtime runs as `compozy __runtime`, and tools run; run --wait shows tool lines",
        async () => {
          assert.ok(
            (await commandLines()).some((args) =>
              args.includes("__runtime") && args.some((a) => a.endsWith("main.ts"))
            ),
            "a runtime started through the hidden command",
          );
          const run = await cli("run", "hello", "--input", '{"name":"Di"}', "--wait");
          assert.equal(run.code, 0, run.stderr);
          assert.match(run.stdout, /↳ tool greet ✓/);
          assert.match(run.stdout, /↳ tool shout ✓/);
          assert.match(run.stdout, /SUCCESS in /);
          // The tools ran in sandboxes started on the bundles written to the cache, as a compiled binary's
          // are (its own files are inside it, out of the sandbox's deno's reach); their processes stay warm.
          const sandboxes = (await commandLines()).filter((args) => args.some((a) => a.startsWith(cacheDir)));
          assert.ok(sandboxes.length > 0, "a sandbox runs from the cache folder");
          for (const args of sandboxes) {
            const host = args.find((a) => a.startsWith(cacheDir))!;
            assert.match(host, /\/sandbox\/worker_host-[0-9a-f]{16}\.js$/);
            assert.ok(!args.some((a) => a.endsWith("worker_host.ts")));
            assert.match(args.find((a) => a.startsWith("--allow-read="))!, /tool_worker-[0-9a-f]{16}\.js/);
          }
          helloExec = run.stdout.trim().split("\n").find((l) => /^SUCCESS in /.test(l))!.split(/\s+/).at(-1)!;
        },
      );

      await t.step("executions logs prints the tool's console output", async () => {
        const logs = await cli("executions", "logs", helloExec);
        assert.equal(logs.code, 0, logs.stderr);
        assert.match(logs.stdout, /greeting Di/);
      });

      await t.step("list: --status in any case; an unknown --workflow says so", async () => {
        const list = await cli("executions", "list", "--status", "Success", "--workflow", "hello");
        assert.equal(list.code, 0, list.stderr);
        assert.match(list.stdout, new RegExp(helloExec));
        // The next page's hint keeps the filters: the cursor alone lists every workflow's executions.
        const second = await cli("run", "hello", "--input", '{"name":"Ev"}', "--wait");
        assert.equal(second.code, 0, second.stderr);
        const page = await cli(
          "executions",
          "list",
          "--status",
          "success",
          "--workflow",
          "hello",
          "--limit",
          "1",
        );
        assert.equal(page.code, 0, page.stderr);
        const more = page.stdout.match(/^more: (.*)$/m);
        assert.ok(more, page.stdout);
        assert.match(more[1], /^--workflow hello --status SUCCESS --limit 1 --cursor \S+$/);
        const next = await cli("executions", "list", ...more[1].split(" "));
        assert.equal(next.code, 0, next.stderr);
        assert.match(next.stdout, /^\S+ +SUCCESS +hello /m);
        const unknown = await cli("executions", "list", "--workflow", "helo");
        assert.equal(unknown.code, 1);
        assert.match(unknown.stderr, /unknown workflow 'helo' \(did you mean 'hello'\?\)/);
      });

      await t.step("rerun starts the same workflow with the same input, linked to the first", async () => {
        const rerun = await cli("executions", "rerun", helloExec);
        assert.equal(rerun.code, 0, rerun.stderr);
        const newId = rerun.stdout.trim();
        const done = await until(newId, "SUCCESS");
        assert.equal(done.rerun_of, helloExec);
        assert.deepEqual(done.input, { name: "Di" });
        const show = await cli("executions", "show", newId);
        assert.match(show.stdout, new RegExp(`re-run of ${helloExec}`));
        assert.match(show.stdout, /greet +SUCCESS .*\{"greeting":"Hello, Di!"\}/);
      });

      await t.step(
        "show of a waiting execution says what it waits for; dev logs each signal that wakes nothing and why",
        async () => {
          const { exec_id: execId } = await (await dev.fetch(
            "/api/workflows/approval/executions",
            post({
              input: { item: "laptop" },
            }),
          )).json();
          await until(execId, "WAITING");
          const show = await cli("executions", "show", execId);
          assert.equal(show.code, 0, show.stderr);
          assert.match(
            show.stdout,
            /waiting await: signal 'approve' when \{\{ \.signal\.payload\.ok == true \}\}, times out at \S+ \(in \d+m\d+s\)/,
          );
          assert.match(show.stdout, /compozy executions signal approve --exec /);

          // A signal the delivery refuses (unknown execution: 404; ended: 409) was not sent: dev's log once
          // said of both that it "wakes nothing", "it waits for no signal".
          const unknownExec = execId.slice(0, -4) + "ffff";
          const unknown = await dev.fetch(`/api/executions/${unknownExec}/signals/nope`, post({}));
          assert.equal(unknown.status, 404, await unknown.text());
          const ended = await dev.fetch(`/api/executions/${helloExec}/signals/nope`, post({}));
          assert.equal(ended.status, 409, await ended.text());
          const miss = await dev.fetch(`/api/executions/${execId}/signals/nope`, post({}));
          assert.equal(miss.status, 202);
          assert.deepEqual(await miss.json(), { exec_id: execId, waiting: 0 });
          await dev.waitForLine(new RegExp(`signal nope to execution ${execId} wakes nothing.*'approve'`));
          // The lines of the refused two would have come first: the route logs before it answers.
          for (const refused of [unknownExec, helloExec]) {
            assert.ok(
              !dev.lines.some((l) => l.includes(`to execution ${refused} wakes nothing`)),
              `a refused signal to ${refused} is logged as sent`,
            );
          }
          const nope = await cli("executions", "signal", "nope", "--exec", execId);
          assert.equal(nope.code, 0, nope.stderr);
          assert.match(nope.stdout, /none of its tasks waits for it: it changes nothing/);
          const refused = await cli(
            "executions",
            "signal",
            "approve",
            "--exec",
            execId,
            "--payload",
            '{"ok":false}',
          );
          assert.match(refused.stdout, /to 1 waiting task\(s\); a wait with a condition takes it only if/);
          await dev.waitForLine(
            new RegExp(
              `signal approve to execution ${execId} not taken by wait await: its condition .*ok == true.* ` +
                "is false; it goes on waiting",
            ),
          );
          const unreadable = await dev.fetch(
            `/api/executions/${execId}/signals/approve`,
            post({ by: "ann" }),
          );
          assert.equal(unreadable.status, 202);
          await dev.waitForLine(
            new RegExp(
              `signal approve to execution ${execId} not taken by wait await: its condition could not be read: .*has no \\W*ok\\W`,
            ),
          );
          assert.equal((await state(execId)).status, "WAITING");
          const logs = await cli("executions", "logs", execId);
          assert.equal(logs.code, 0, logs.stderr);
          // The signal no wait listens for is said in the execution's own logs, not only dev's (d8a6f36).
          assert.match(
            logs.stdout,
            new RegExp(`signal nope to ${execId} dropped: no wait of it listens for it`),
          );
          const hit = await dev.fetch(
            `/api/executions/${execId}/signals/approve`,
            post({ ok: true, by: "ann" }),
          );
          assert.deepEqual(await hit.json(), { exec_id: execId, waiting: 1 });
          await until(execId, "SUCCESS");
        },
      );

      await t.step("pause and resume from the CLI", async () => {
        const { exec_id: execId } = await (await dev.fetch("/api/workflows/slow/executions", post({})))
          .json();
        await until(execId, "WAITING");
        const pause = await cli("executions", "pause", execId);
        assert.equal(pause.code, 0, pause.stderr);
        await until(execId, "PAUSED");
        const resume = await cli("executions", "resume", execId);
        assert.equal(resume.code, 0, resume.stderr);
        await until(execId, "WAITING");
        await cli("executions", "cancel", execId);
      });

      await t.step(
        "--watch says it is on; a reload names the changed files, not editor temporaries",
        async () => {
          await dev.waitForLine(/watching .* \(--watch\)/);
          await Deno.writeTextFile(join(dir, "workflows/.hello.yaml.swp"), "x");
          await Deno.writeTextFile(join(dir, "workflows/tools/shout.ts~"), "x");
          const tool = join(dir, "workflows/tools/shout.ts");
          await Deno.writeTextFile(tool, (await Deno.readTextFile(tool)) + "// changed\n");
          const line = await dev.waitForLine(/reloaded \(/);
          assert.match(line, /reloaded \(workflows\/tools\/shout\.ts\)/);
          const run = await cli("run", "hello", "--input", '{"name":"Ed"}', "--wait");
          assert.equal(run.code, 0, run.stderr);
          assert.ok(
            !dev.lines.some((l) => /runtime stopping/.test(l)),
            "the runtime's restart is not announced",
          );
        },
      );
    } finally {
      await dev.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

/** The command lines of the machine's processes (those that end while listed are left out). */
async function commandLines(): Promise<string[][]> {
  const lines = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      lines.push((await Deno.readTextFile(`/proc/${entry.name}/cmdline`)).split("\0"));
    } catch {
      // The process ended while we listed them.
    }
  }
  return lines;
}
