import assert from "node:assert/strict";
import { SubjectError } from "./errors.ts";
import { buildSubject, deadLetterSubject, parseSubject, subjectFilter } from "./subjects.ts";

const exec = "0193f0a4-7b3c-7d2e-9a41-6c0f3b2a1e55";

Deno.test("subjects", async (t) => {
  await t.step("build and parse round-trip", () => {
    const parts = {
      correlationId: exec,
      component: "task",
      kind: "evts",
      id: "t-1",
      type: "success",
    } as const;
    const subject = buildSubject(parts);
    assert.equal(subject, `compozy.${exec}.task.evts.t-1.success`);
    assert.deepEqual(parseSubject(subject), parts);
  });

  await t.step("log subjects accept levels and process components", () => {
    const subject = buildSubject({
      correlationId: "system",
      component: "engine",
      kind: "logs",
      id: "p1",
      type: "warn",
    });
    assert.equal(parseSubject(subject).type, "warn");
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ["empty id", { id: "" }, /Invalid id: a subject token cannot be empty/],
    ["dot in id", { id: "a.b" }, /Invalid id 'a\.b': a subject token cannot contain '\.'/],
    ["star", { correlationId: "*" }, /Invalid correlation id '\*': .* cannot contain '\*'/],
    ["gt", { id: ">" }, /Invalid id '>': .* cannot contain '>'/],
    ["space", { id: "get weather" }, /Invalid id 'get weather': .* cannot contain white space/],
    ["tab", { id: "a\tb" }, /white space/],
    [
      "unknown component",
      { component: "robot" },
      /Invalid component 'robot': expected one of workflow, task, agent, tool/,
    ],
    ["unknown kind", { kind: "things" }, /Invalid kind 'things'/],
    ["unknown event type", { type: "exploded" }, /Invalid evts type 'exploded'/],
    ["command type on events", { type: "trigger" }, /Invalid evts type 'trigger'/],
    ["engine is not a component of events", { component: "engine" }, /Invalid component 'engine'/],
  ];
  for (const [name, override, message] of bad) {
    await t.step(`refuses ${name}`, () => {
      const parts = {
        correlationId: exec,
        component: "task",
        kind: "evts",
        id: "t1",
        type: "success",
        ...override,
      };
      assert.throws(
        () => buildSubject(parts as never),
        (e) => e instanceof SubjectError && message.test(e.message),
      );
    });
  }

  await t.step("parse refuses malformed subjects by name", () => {
    assert.throws(() => parseSubject("compozy.x.task.evts.success"), /expected compozy\.<correlation_id>/);
    assert.throws(() => parseSubject("other.x.task.evts.a.success"), SubjectError);
    assert.throws(
      () => parseSubject(`compozy.${exec}.task.evts.a.boom`),
      /Invalid evts type 'boom'.* in subject 'compozy\./,
    );
    assert.throws(
      () => parseSubject(`compozy..task.evts.a.success`),
      /correlation id: a subject token cannot be empty/,
    );
  });

  await t.step("filters use wildcards for missing parts", () => {
    assert.equal(subjectFilter({ correlationId: exec }), `compozy.${exec}.*.*.*.*`);
    assert.equal(
      subjectFilter({ component: "tool", kind: "cmds", type: "execute" }),
      "compozy.*.tool.cmds.*.execute",
    );
    assert.throws(() => subjectFilter({ id: "a b" }), SubjectError);
  });

  await t.step("dead-letter subjects", () => {
    assert.equal(deadLetterSubject("task", "evts"), "compozy.dlq.task.evts");
    assert.throws(() => deadLetterSubject("ta.sk", "evts"), SubjectError);
  });
});
