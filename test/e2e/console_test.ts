/**
 * The web console in a real browser (the system Chromium, driven by puppeteer-core) against `compozy dev` on
 * a test project with an API key: the key prompt, the start form and its 422, the list updating live, the
 * timeline and outputs, a signal, a cancel, a re-run, the bad-input messages, and no request to any other
 * host. Screenshots of each page go to a temporary folder printed at the start.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import type { Page } from "puppeteer-core";
import { startMockOpenAI } from "../support/mock_llm/mod.ts";
import { fill, launchBrowserBeside, recordedPage, waitForText } from "./support/browser.ts";
import { startDev } from "./support/dev_server.ts";

const FIXTURE = resolve(import.meta.dirname!, "fixtures/console");
const KEY = "console-test-key";

Deno.test("web console in a real browser", async (t) => {
  const shots = await Deno.makeTempDir({ prefix: "compozy-console-shots-" });
  console.log(`screenshots in ${shots}`);
  // The agent of the `advise` workflow talks to a scripted OpenAI-compatible server on loopback.
  await using llm = startMockOpenAI();
  llm.enqueue(
    { type: "tool_calls", calls: [{ name: "weather_tool", arguments: { city: "Lisbon" } }] },
    // The answer streams in two pieces, 1.5 s apart (and 2 s after the request): the page shows the first
    // while the agent task still runs.
    {
      type: "json",
      value: { advice: "Light jacket" },
      usage: { inputTokens: 40, outputTokens: 6 },
      delayMs: 2_000,
      chunkDelayMs: 1_500,
    },
  );
  const [dev, browser] = await launchBrowserBeside(
    startDev({ fixture: FIXTURE, env: { COMPOZY_API_KEY: KEY, MOCK_LLM_URL: llm.baseUrl } }),
    (d) => d.stop(),
  );
  const { page, requests, errors } = await recordedPage(browser);
  const shot = (name: string, target: Page = page) =>
    target.screenshot({ path: join(shots, `${name}.png`) as `${string}.png`, fullPage: true });
  const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
  const startByApi = async (workflow: string, input: unknown) => {
    const res = await dev.fetch(`/api/workflows/${workflow}/executions`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ input }),
    });
    assert.equal(res.status, 202);
    return (await res.json()).exec_id as string;
  };
  const open = async (hash: string) => {
    await page.goto(`${dev.url}/${hash}`);
  };
  let greetId = "";

  try {
    await t.step(
      "the page asks for the API key, says when it is refused, and works with the right one",
      async () => {
        await open("");
        await waitForText(page, "#auth-message", "requires an API key (401)");
        await shot("01-key-prompt");
        await fill(page, "#api-key", "not-the-key");
        await page.click(".key-prompt button[type=submit]");
        await waitForText(page, "#auth-message", "refused (403)");
        await shot("02-key-refused");
        await fill(page, "#api-key", KEY);
        await page.click(".key-prompt button[type=submit]");
        await waitForText(page, "h1", "Executions");
      },
    );

    await t.step("the start form is built from the input schema and shows a 422 at the field", async () => {
      await open("#/workflows/greet");
      await page.waitForSelector("#field-name");
      const options = await page.$$eval("#field-style option", (els) => els.map((e) => e.textContent));
      assert.deepEqual(options, ["—", "plain", "warm"]);
      assert.equal(
        await page.$eval("#field-times", (e) => (e as unknown as { type: string }).type),
        "number",
      );
      assert.equal(
        await page.$eval("#field-excited", (e) => (e as unknown as { type: string }).type),
        "checkbox",
      );
      await fill(page, "#field-name", "A");
      await page.select("#field-style", "warm");
      await page.click("#start-form button[type=submit]");
      // minLength is the server's check (ajv): the 422's detail lands under the name field.
      await waitForText(page, "[data-field=name] .field-error", "fewer than 2 characters");
      await waitForText(page, ".error-box", "does not fit the workflow's schema");
      await shot("03-start-form-422");
    });

    await t.step("a start from the form appears in the list and finishes there live", async () => {
      await fill(page, "#field-name", "Ada");
      await page.click("#start-form button[type=submit]");
      await page.waitForFunction(() => /^#\/executions\/[0-9a-f-]{36}$/.test(location.hash));
      greetId = (await page.evaluate(() => location.hash)).split("/").pop()!;
      // Back to the list by the nav link (no reload: a marker on window survives).
      await page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 1);
      await page.click('a[href="#/executions"]');
      await page.waitForSelector(`tr[data-exec="${greetId}"]`);
      await page.waitForSelector(`tr[data-exec="${greetId}"][data-status="SUCCESS"]`, { timeout: 30_000 });
      assert.equal(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker), 1);
      await shot("04-executions-list");
    });

    await t.step("one execution: the timeline of its tasks and its outputs", async () => {
      await page.click(`tr[data-exec="${greetId}"] a`);
      await page.waitForSelector('.tl-row[data-task="both/quiet"]');
      // The parallel's branches are stacked under it.
      const rows = await page.$$eval(".tl-row", (els) => els.map((e) => e.getAttribute("data-task")));
      assert.deepEqual(rows.slice(0, 2), ["hello", "both"]);
      assert.deepEqual(rows.slice(2).sort(), ["both/loud", "both/quiet"]);
      await waitForText(page, "#exec-output", '"Warm greetings, Ada!"');
      await page.click('.tl-row[data-task="both/loud"]');
      await waitForText(page, "#task-panel .task-output", '"WARM GREETINGS, ADA!"');
      await shot("05-execution-timeline");
      await page.click(".tabs button:nth-child(2)");
      await page.waitForSelector('.g-node[data-task="both"] .g-node[data-task="both/loud"] .s-success');
      await shot("06-execution-graph");
      await page.click(".tabs button:nth-child(3)");
      await waitForText(page, "#events", "workflow.success");
    });

    await t.step(
      "a finished execution's actions say it has ended; a re-run starts a linked one",
      async () => {
        await waitForText(page, "#ended-note", "has ended (SUCCESS)");
        for (const id of ["#act-signal", "#act-pause", "#act-resume", "#act-cancel"]) {
          assert.equal(
            await page.$eval(id, (b) => (b as unknown as { disabled: boolean }).disabled),
            true,
            id,
          );
        }
        await page.click("#act-rerun");
        await fill(page, "#rerun-form textarea", JSON.stringify({ name: "Bob", style: "plain" }));
        await page.click("#rerun-form button[type=submit]");
        await page.waitForFunction(
          (first) =>
            location.hash.startsWith("#/executions/") &&
            !location.hash.endsWith(first as string),
          {},
          greetId,
        );
        await waitForText(page, ".facts", "Re-run of");
        await waitForText(page, "#exec-output", '"Hello, Bob!"', 30_000);
      },
    );

    await t.step(
      "a signal sent from the page ends a waiting execution; a malformed payload is refused",
      async () => {
        const id = await startByApi("approval", { item: "item-1" });
        await open(`#/executions/${id}`);
        await waitForText(page, ".why-wait", "waits for the signal approve");
        await waitForText(page, ".why-wait", ".signal.payload.ok == true");
        await page.click("#act-signal");
        assert.equal(
          await page.$eval(
            "#signal-form input[name=signal_id]",
            (e) => (e as unknown as { value: string }).value,
          ),
          "approve",
        );
        await fill(page, "#signal-form textarea", '{"ok": true, by: }');
        await waitForText(page, "#payload-error", "not valid JSON");
        assert.equal(
          await page.$eval(
            "#signal-form button[type=submit]",
            (b) => (b as unknown as { disabled: boolean }).disabled,
          ),
          true,
        );
        await shot("07-signal-malformed");
        await fill(page, "#signal-form textarea", '{"ok": true, "by": "Grace"}');
        await page.click("#signal-form button[type=submit]");
        await waitForText(page, "h1 .status", "SUCCESS", 30_000);
        await waitForText(page, "#exec-output", '"ITEM-1 APPROVED BY GRACE"');
        await shot("08-signaled");
      },
    );

    await t.step("cancel with a reason from the page", async () => {
      const id = await startByApi("slow", {});
      await open(`#/executions/${id}`);
      await waitForText(page, ".why-wait", "sleeps on a timer");
      await shot("09-sleeping");
      await page.click("#act-cancel");
      await fill(page, "#cancel-form input[name=reason]", "not needed");
      await page.click("#cancel-form button[type=submit]");
      await waitForText(page, "h1 .status", "CANCELED", 30_000);
      await waitForText(page, "#ended-note", "has ended (CANCELED)");
    });

    await t.step(
      "an agent task shows its text as it streams, its model, usage, cost and tool calls",
      async () => {
        const id = await startByApi("advise", { city: "Lisbon" });
        await open(`#/executions/${id}`);
        await waitForText(page, '#agent-thinking [data-task="advise"]', '{"advice":"Light', 30_000);
        await shot("10a-agent-thinking");
        await waitForText(page, "h1 .status", "SUCCESS", 30_000);
        assert.equal(await page.$("#agent-thinking"), null, "the live text goes once the task has ended");
        await waitForText(page, "#exec-output", '"Light jacket"');
        await page.click('.tl-row[data-task="advise"]');
        await waitForText(page, "#agent-model", "openai-compatible/test-model");
        const state = await (await dev.fetch(`/api/executions/${id}`, { headers: auth })).json();
        const usage = state.tasks[0].usage;
        assert.ok(usage.output_tokens >= 6, JSON.stringify(usage));
        await waitForText(
          page,
          "#task-panel",
          `${usage.input_tokens} in · ${usage.output_tokens} out · ${usage.total_tokens} total`,
        );
        // The execution's usage is its one agent task's; the price gives both a cost.
        await waitForText(page, "#exec-usage", `${usage.total_tokens} total`);
        assert.ok(state.usage.cost > 0, JSON.stringify(state.usage));
        await waitForText(page, "#exec-cost", state.usage.cost.toFixed(state.usage.cost < 0.01 ? 6 : 4));
        await waitForText(page, "#task-cost", usage.cost.toFixed(usage.cost < 0.01 ? 6 : 4));
        // A tool call and the structured answer: two steps of the loop; the call in the task's tool calls.
        await waitForText(page, "#agent-steps", "2");
        await waitForText(page, '#tool-calls [data-tool="weather_tool"]', "turn 1");
        await waitForText(page, "#task-panel .events", "agent.success");
        await shot("10b-agent");
      },
    );

    await t.step("a parent links to its sub-workflow and back", async () => {
      const id = await startByApi("family", {});
      await open(`#/executions/${id}`);
      await waitForText(page, "h1 .status", "SUCCESS", 30_000);
      await waitForText(page, ".facts", "Sub-workflows");
      await page.click('.facts a[href^="#/executions/"]');
      await waitForText(page, "h1", "greet");
      await waitForText(page, ".facts", `Parent${id}`);
      await shot("10-sub-workflow");
    });

    await t.step(
      "an unknown execution id shows a clear message, from a link and from the search",
      async () => {
        await open("#/executions/0000-unknown");
        await waitForText(page, ".error-box", "There is no execution with this id");
        await waitForText(page, ".error-box", "Unknown execution '0000-unknown'");
        await shot("11-unknown-execution");
        await open("#/executions");
        await fill(page, "#search", "no-such-id");
        await page.focus("#search");
        await page.keyboard.press("Enter");
        await waitForText(page, ".error-box", "No such execution");
      },
    );

    await t.step("workflows with their triggers, and definitions with their files", async () => {
      await open("#/workflows");
      await waitForText(page, '[data-workflow="greet"]', `${dev.url}/api/webhooks/greet`);
      await waitForText(page, '[data-workflow="greet"]', "schedule 0 0 1 1 *");
      const year = new Date().getUTCFullYear() + 1;
      const next = await page.$eval('[data-workflow="greet"] .triggers', (e) => e.textContent ?? "");
      assert.match(next, new RegExp(`next .*${String(year).slice(2)}`), next);
      await shot("12-workflows");
      await open("#/definitions");
      await waitForText(page, '[data-tool="shout"]', "compozy.yaml:11");
      await waitForText(page, '[data-tool="shout"]', "5s");
      await waitForText(page, '[data-tool="greet"]', "workflows/greet.yaml:18");
      await waitForText(page, '[data-agent="forecaster"]', "workflows/advise.yaml:14");
      await waitForText(page, '[data-agent="forecaster"]', "openai-compatible/test-model");
      await shot("13-definitions");
    });

    await t.step("keyboard: / focuses the id search, Enter opens the execution", async () => {
      await open("#/executions");
      await page.waitForSelector(`tr[data-exec="${greetId}"]`);
      await page.keyboard.press("/");
      assert.equal(await page.evaluate("document.activeElement.id"), "search");
      await page.keyboard.type(greetId);
      await page.keyboard.press("Enter");
      await page.waitForFunction(`location.hash === "#/executions/${greetId}"`);
      await waitForText(page, "#exec-id", greetId);
    });

    await t.step("filters and paging", async () => {
      await open("#/executions?status=CANCELED");
      await page.waitForSelector('tr[data-status="CANCELED"]');
      const statuses = await page.$$eval(
        "tr[data-exec]",
        (els) => els.map((e) => e.getAttribute("data-status")),
      );
      assert.deepEqual([...new Set(statuses)], ["CANCELED"]);
      await page.select('select[name="workflow"]', "greet");
      await waitForText(page, "#executions", "No executions match these filters");
      const all = await (await dev.fetch("/api/executions?limit=500", { headers: auth })).json();
      const ids = all.items.map((e: { exec_id: string }) => e.exec_id);
      await open("#/executions?limit=2");
      await page.waitForSelector(`tr[data-exec="${ids[1]}"]`);
      const rows = () => page.$$eval("tr[data-exec]", (els) => els.map((e) => e.getAttribute("data-exec")));
      assert.deepEqual(await rows(), ids.slice(0, 2));
      await page.click("#older");
      await page.waitForSelector(`tr[data-exec="${ids[3]}"]`);
      assert.deepEqual(await rows(), ids.slice(2, 4));
      await page.click("#newer");
      await page.waitForSelector(`tr[data-exec="${ids[0]}"]`);
      assert.deepEqual(await rows(), ids.slice(0, 2));
    });

    await t.step("narrow window and dark mode", async () => {
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
      await page.setViewport({ width: 420, height: 800 });
      await open(`#/executions/${greetId}`);
      await page.waitForSelector('.tl-row[data-task="both/loud"]');
      const background = await page.evaluate("getComputedStyle(document.body).backgroundColor");
      assert.equal(background, "rgb(20, 22, 26)");
      const overflow = await page.evaluate("document.documentElement.scrollWidth - innerWidth") as number;
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a narrow window`);
      await shot("14-narrow-dark");
    });

    await t.step("first render of the list (a figure printed, not a timed check)", async () => {
      await page.setViewport({ width: 1100, height: 800 });
      // A new document (not a hash change), so that the page's clock starts at this load.
      await page.goto("about:blank");
      await open("#/executions");
      await page.waitForSelector("#executions tbody tr[data-exec]");
      // performance.now() counts from the navigation's start: page, bundle, key check and list read.
      const ms = await page.evaluate("performance.now()") as number;
      console.log(`first render of the executions list: ${Math.round(ms)} ms`);
      await shot("15-executions-list-dark");
    });

    await t.step("the console makes no request to any host but its own", () => {
      const origin = new URL(dev.url).origin;
      const foreign = requests.filter((u) => !/^(data|about):/.test(u) && new URL(u).origin !== origin);
      assert.deepEqual(foreign, []);
      assert.ok(requests.some((u) => u.startsWith(`${origin}/console/app.js`)), "the bundle was loaded");
      assert.deepEqual(errors.filter((e) => !/status of (401|403|404|409|422)/.test(e)), []);
    });
  } finally {
    await browser.close();
    await dev.stop();
  }
});
