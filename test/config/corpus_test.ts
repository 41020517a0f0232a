/**
 * The broken-config corpus: every case under `corpus/` is a project (a `workflow.yaml` gets a default
 * `compozy.yaml` unless the case has its own, or a `.no-project` marker) and `expected.txt` holds the exact
 * diagnostics `compozy validate` prints for it, file:line:col, field path and message.
 *
 * Regenerate after an intended change with `UPDATE_CORPUS=1 deno test -A test/config/corpus_test.ts`, then
 * read the diff: it is the user-visible change.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { checkProject, formatDiagnostic } from "../../engine/domain/project/mod.ts";
import { stageProject } from "./stage.ts";

const CORPUS = new URL("./corpus/", import.meta.url).pathname;
const UPDATE = Deno.env.get("UPDATE_CORPUS") === "1";

const cases = [...Deno.readDirSync(CORPUS)].filter((e) => e.isDirectory).map((e) => e.name).sort();

Deno.test("broken config corpus: each case reports exactly its expected diagnostics", async (t) => {
  for (const name of cases) {
    await t.step(name, async () => {
      const caseDir = join(CORPUS, name);
      const dir = await stageProject(caseDir);
      try {
        // An empty process environment keeps the `.env.NAME` warnings independent of the machine.
        const actual = (await checkProject(dir, { processEnv: {} })).map((d) => formatDiagnostic(d, dir));
        const expectedFile = join(caseDir, "expected.txt");
        if (UPDATE) await Deno.writeTextFile(expectedFile, actual.join("\n") + "\n");
        const expected = (await Deno.readTextFile(expectedFile)).trimEnd().split("\n");
        assert.deepEqual(actual, expected);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

Deno.test("broken config corpus: every case expects a diagnostic, and there are 40 cases or more", async () => {
  for (const name of cases) {
    const expected = await Deno.readTextFile(join(CORPUS, name, "expected.txt"));
    assert.ok(expected.trim().length > 0, `${name} expects no diagnostic`);
  }
  assert.ok(cases.length >= 40, `the corpus has ${cases.length} cases`);
});
