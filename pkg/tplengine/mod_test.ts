import assert from "node:assert/strict";
import { compileTemplate, containsTemplate, renderValue, TemplateError, templateReferences } from "./mod.ts";

const ctx = {
  workflow: { id: "weather", exec_id: "e-1", input: { city: "Lisbon", days: 3, tags: ["a", "b"] } },
  tasks: {
    "get-weather": { status: "SUCCESS", output: { temp: 25, sky: "clear", hours: [10, 12, 14] } },
    advise: { status: "PENDING", output: null },
  },
  env: { UNITS: "metric", EMPTY: "" },
  item: { name: "x" },
  index: 0,
};

const render = (source: string, context: Record<string, unknown> = ctx) =>
  compileTemplate(source).render(context);

/** Asserts that `fn` throws a TemplateError and returns it for further checks. */
function templateError(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TemplateError, `expected TemplateError, got ${err}`);
    return err;
  }
  assert.fail("expected a TemplateError");
}

Deno.test("paths", async (t) => {
  await t.step("read nested values, including hyphenated task ids", () => {
    assert.equal(render("{{ .workflow.input.city }}"), "Lisbon");
    assert.equal(render("{{ .tasks.get-weather.output.sky }}"), "clear");
    assert.equal(render("{{.workflow.exec_id}}"), "e-1");
  });
  await t.step("numeric segments index lists", () => {
    assert.equal(render("{{ .tasks.get-weather.output.hours.0 }}"), 10);
    assert.equal(render("{{ .tasks.get-weather.output.hours.2 }}"), 14);
  });
  await t.step("numeric segments are plain keys on objects", () => {
    assert.equal(render("{{ .m.0 }}", { m: { "0": "zero" } }), "zero");
  });
  await t.step("a lone dot is not a path", () => {
    assert.match(templateError(() => compileTemplate("{{ . }}")).message, /needs a name after each "\."/);
    assert.equal(templateError(() => compileTemplate("{{ .a. }}")).position, 5);
    assert.equal(templateError(() => compileTemplate("{{ .a..b }}")).position, 5);
  });
});

Deno.test("type preservation", async (t) => {
  await t.step("a whole-value template keeps the value's type", () => {
    assert.deepEqual(render("{{ .tasks.get-weather.output }}"), ctx.tasks["get-weather"].output);
    assert.deepEqual(render("{{ .workflow.input.tags }}"), ["a", "b"]);
    assert.equal(render("{{ .workflow.input.days }}"), 3);
    assert.equal(render("{{ .tasks.advise.output }}"), null);
    assert.equal(render("{{ 1 < 2 }}"), true);
  });
  await t.step("whitespace inside the braces does not matter, text outside does", () => {
    assert.equal(render("{{\n  .workflow.input.days\t}}"), 3);
    assert.equal(render(" {{ .workflow.input.days }}"), " 3");
    assert.equal(render("{{ .index }}{{ .index }}"), "00");
  });
  await t.step("inside a longer string, strings stay as they are and the rest becomes JSON", () => {
    assert.equal(render("City: {{ .workflow.input.city }}"), "City: Lisbon");
    assert.equal(
      render("w={{ .tasks.get-weather.output }}"),
      'w={"temp":25,"sky":"clear","hours":[10,12,14]}',
    );
    assert.equal(render("{{ .workflow.input.days }} days, {{ true }}, {{ null }}"), "3 days, true, null");
  });
  await t.step("a string without templates renders as itself", () => {
    const plain = compileTemplate("just text }} here");
    assert.equal(plain.isTemplate, false);
    assert.equal(plain.render(ctx), "just text }} here");
    assert.deepEqual(plain.references(), []);
    assert.equal(compileTemplate("{{ 1 }}").isTemplate, true);
  });
});

Deno.test("literals", async (t) => {
  await t.step("strings with escapes, in either quote", () => {
    assert.equal(render(String.raw`{{ "a\"b\\c\n\t\u00e9\/" }}`), 'a"b\\c\n\té/');
    assert.equal(render(`{{ 'it\\'s' }}`), "it's");
    assert.equal(render(`{{ "{{ not a template }}" }}`), "{{ not a template }}");
  });
  await t.step("numbers, booleans, null", () => {
    assert.equal(render("{{ 42 }}"), 42);
    assert.equal(render("{{ -1.5 }}"), -1.5);
    assert.equal(render("{{ 2e3 }}"), 2000);
    assert.equal(render("{{ true }}"), true);
    assert.equal(render("{{ false }}"), false);
    assert.equal(render("{{ null }}"), null);
  });
  await t.step("malformed literals are syntax errors with positions", () => {
    assert.equal(templateError(() => compileTemplate(`ab {{ "open }}`)).position, 6);
    const bad = templateError(() => compileTemplate(String.raw`{{ "bad \q" }}`));
    assert.equal(bad.position, 8);
    assert.match(bad.message, /invalid escape/);
    assert.match(templateError(() => compileTemplate("{{ 12abc }}")).message, /invalid number/);
    assert.match(templateError(() => compileTemplate("{{ 1.2.3 }}")).message, /invalid number/);
  });
});

Deno.test("operators", async (t) => {
  await t.step("equality is strict and deep", () => {
    assert.equal(render("{{ .workflow.input.city == 'Lisbon' }}"), true);
    assert.equal(render("{{ .workflow.input.days == '3' }}"), false);
    assert.equal(render("{{ .a == .b }}", { a: { x: [1, { y: 2 }] }, b: { x: [1, { y: 2 }] } }), true);
    assert.equal(render("{{ .a == .b }}", { a: { x: 1, y: 2 }, b: { y: 2, x: 1 } }), true);
    assert.equal(render("{{ .a != .b }}", { a: [1, 2], b: [2, 1] }), true);
    assert.equal(render("{{ .a == .b }}", { a: [], b: {} }), false);
    assert.equal(render("{{ .tasks.advise.output == null }}"), true);
  });
  await t.step("ordering works on two numbers or two strings", () => {
    assert.equal(render("{{ .workflow.input.days < 4 }}"), true);
    assert.equal(render("{{ .workflow.input.days <= 3 }}"), true);
    assert.equal(render("{{ .workflow.input.days > 3 }}"), false);
    assert.equal(render("{{ .workflow.input.days >= 3 }}"), true);
    assert.equal(render("{{ 'abc' < 'abd' }}"), true);
  });
  await t.step("ordering mixed or non-scalar types is an error at the operator", () => {
    const err = templateError(() => render("{{ .workflow.input.days < '4' }}"));
    assert.match(err.message, /cannot compare number with string using "<"/);
    assert.equal(err.position, 24);
    assert.match(templateError(() => render("{{ null >= 1 }}")).message, /null with number/);
    assert.match(
      templateError(() => render("{{ .workflow.input.tags > .workflow.input.tags }}")).message,
      /list/,
    );
  });
  await t.step("comparisons do not chain", () => {
    assert.match(templateError(() => compileTemplate("{{ 1 < 2 < 3 }}")).message, /cannot be chained/);
    assert.equal(render("{{ (1 < 2) == true }}"), true);
  });
  await t.step("&& || ! use JS truthiness and always yield booleans", () => {
    assert.equal(render("{{ .workflow.input.city && .index }}"), false);
    assert.equal(render("{{ .env.EMPTY || .workflow.input.days }}"), true);
    assert.equal(render("{{ !.env.EMPTY }}"), true);
    assert.equal(render("{{ !!.workflow.input.tags }}"), true);
    assert.equal(render("{{ !.workflow.input.tags }}"), false);
    assert.equal(render("{{ !.e }}", { e: {} }), false);
    assert.equal(render("{{ 1 && 2 && 0 }}"), false);
    assert.equal(render("{{ 0 || '' || null || 'x' }}"), true);
  });
  await t.step('&& || ! read the strings "true" and "false" as the booleans they name, as `if` does', () => {
    // `.env` values are strings: `!.env.SKIP` with SKIP "false" was false (a non-empty string is truthy).
    assert.equal(render("{{ !.env.SKIP }}", { env: { SKIP: "false" } }), true);
    assert.equal(render("{{ !.env.SKIP }}", { env: { SKIP: "true" } }), false);
    assert.equal(render("{{ .env.ON && true }}", { env: { ON: "false" } }), false);
    assert.equal(render("{{ .env.ON || false }}", { env: { ON: "true" } }), true);
    assert.equal(render("{{ !'False' }}"), false); // only the exact strings, as in `if`
  });
  await t.step("&& binds tighter than ||, ! tighter than comparisons, parentheses override", () => {
    assert.equal(render("{{ true || false && false }}"), true);
    assert.equal(render("{{ (true || false) && false }}"), false);
    assert.equal(render("{{ !false == true }}"), true);
    assert.equal(render("{{ !(1 == 1) }}"), false);
  });
  await t.step("&& and || short-circuit, so a guarded missing path is not an error", () => {
    assert.equal(render("{{ false && .nope.x }}"), false);
    assert.equal(render("{{ true || .nope.x }}"), true);
    assert.throws(() => render("{{ true && .nope.x }}"), TemplateError);
  });
});

Deno.test("helpers and pipes", async (t) => {
  await t.step("default applies to missing and null values only", () => {
    assert.equal(render("{{ default(.nope, 1) }}"), 1);
    assert.equal(render("{{ default(.tasks.advise.output, 'none') }}"), "none");
    assert.equal(render("{{ default(.index, 5) }}"), 0);
    assert.equal(render("{{ default(.env.EMPTY, 'x') }}"), "");
    assert.equal(render("{{ default(.nope.deeper.still, .workflow.input.days) }}"), 3);
  });
  await t.step("default evaluates its fallback only when needed", () => {
    assert.equal(render("{{ default(.index, .nope) }}"), 0);
    assert.throws(() => render("{{ default(.nope, .also_nope) }}"), /missing value at \.also_nope/);
  });
  await t.step("default covers a missing value anywhere inside its first argument, not type errors", () => {
    assert.equal(render("{{ default(upper(.nope), 'X') }}"), "X");
    assert.throws(() => render("{{ default(upper(1), 'X') }}"), /upper\(\) expects a string, got number/);
  });
  await t.step("json, len, upper, lower", () => {
    assert.equal(render("{{ json(.workflow.input.tags) }}"), '["a","b"]');
    assert.equal(render("{{ json(.workflow.input.city) }}"), '"Lisbon"');
    assert.equal(render("{{ len(.workflow.input.tags) }}"), 2);
    assert.equal(render("{{ len(.workflow.input) }}"), 3);
    assert.equal(render("{{ len('héllo😀') }}"), 6);
    assert.equal(render("{{ upper(.workflow.input.city) }}"), "LISBON");
    assert.equal(render("{{ lower('ÀB') }}"), "àb");
    assert.match(
      templateError(() => render("{{ len(3) }}")).message,
      /len\(\) expects a string, list or object, got number/,
    );
    assert.match(templateError(() => render("{{ lower(null) }}")).message, /got null/);
  });
  await t.step("now() returns the current time as an ISO string", () => {
    const before = Date.now();
    const value = render("{{ now() }}") as string;
    assert.match(value, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(Date.parse(value) >= before - 1 && Date.parse(value) <= Date.now());
  });
  await t.step("a pipe passes its value as the first argument", () => {
    assert.equal(render("{{ .nope | default(1) }}"), 1);
    assert.equal(render("{{ .workflow.input | json }}"), '{"city":"Lisbon","days":3,"tags":["a","b"]}');
    assert.equal(render("{{ .nope | default('lisbon') | upper }}"), "LISBON");
    assert.equal(render("{{ .workflow.input.tags | len() }}"), 2);
  });
  await t.step("pipes bind tighter than operators", () => {
    assert.equal(render("{{ .nope | default(0) > 3 }}"), false);
    assert.equal(render("{{ !.nope | default(false) }}"), true);
    assert.equal(render("{{ (1 == 1) | json }}"), "true");
  });
  await t.step("unknown functions and wrong argument counts fail at compile time", () => {
    const unknown = templateError(() => compileTemplate("x {{ .a | shout }}"));
    assert.match(unknown.message, /unknown function "shout"/);
    assert.equal(unknown.position, 10);
    assert.match(templateError(() => compileTemplate("{{ exec('ls') }}")).message, /unknown function "exec"/);
    assert.match(
      templateError(() => compileTemplate("{{ default(.a) }}")).message,
      /takes 2 argument\(s\), got 1/,
    );
    assert.match(
      templateError(() => compileTemplate("{{ .a | now }}")).message,
      /takes 0 argument\(s\), got 1/,
    );
    assert.match(
      templateError(() => compileTemplate("{{ json }}")).message,
      /is a function: write json\(\.\.\.\)/,
    );
    assert.match(
      templateError(() => compileTemplate("{{ workflow.input }}")).message,
      /paths start with "\."/,
    );
  });
});

Deno.test("errors", async (t) => {
  await t.step("a missing path names the path and where the lookup stopped", () => {
    const err = templateError(() => render("Hi {{ .tasks.foo.output }}"));
    assert.equal(err.message, 'missing value at .tasks.foo.output: .tasks has no "foo"');
    assert.equal(err.path, "tasks.foo.output");
    assert.equal(err.position, 6);
    assert.equal(err.source, "Hi {{ .tasks.foo.output }}");
    assert.match(templateError(() => render("{{ .nope }}")).message, /the context has no "nope"/);
    assert.match(
      templateError(() => render("{{ .workflow.input.city.x }}")).message,
      /\.workflow\.input\.city is a string/,
    );
    assert.match(templateError(() => render("{{ .tasks.advise.output.x }}")).message, /output is null/);
    assert.match(
      templateError(() => render("{{ .workflow.input.tags.5 }}")).message,
      /list of 2 item\(s\), with no index "5"/,
    );
  });
  await t.step("lists have no named properties", () => {
    assert.equal(
      templateError(() => render("{{ .workflow.input.tags.length }}")).path,
      "workflow.input.tags.length",
    );
  });
  await t.step("syntax errors carry positions", () => {
    const unterminated = templateError(() => compileTemplate("Hello {{ .name"));
    assert.equal(unterminated.position, 6);
    assert.match(unterminated.message, /unterminated "\{\{"/);
    assert.equal(templateError(() => compileTemplate("{{ .a }} and {{ .b ")).position, 13);
    assert.equal(templateError(() => compileTemplate("{{ }}")).position, 3);
    assert.equal(templateError(() => compileTemplate("{{ .a .b }}")).position, 6);
    assert.equal(templateError(() => compileTemplate("{{ .a = 1 }}")).position, 6);
    assert.equal(templateError(() => compileTemplate("{{ (.a }}")).position, 7);
    assert.equal(templateError(() => compileTemplate("{{ len(.a,) }}")).position, 10);
    assert.match(templateError(() => compileTemplate("{{ .a }")).message, /unexpected character "\}"/);
  });
});

Deno.test("safety", async (t) => {
  await t.step("prototype machinery reads as missing", () => {
    for (
      const path of [
        ".__proto__",
        ".constructor",
        ".a.constructor",
        ".a.__proto__",
        ".a.toString",
        ".prototype",
      ]
    ) {
      assert.throws(() => render(`{{ ${path} }}`, { a: {} }), /missing value/, path);
      assert.equal(render(`{{ ${path} | default('safe') }}`, { a: {} }), "safe");
    }
    assert.throws(() => render("{{ .tasks.constructor.name }}"), /missing value/);
    assert.throws(() => render("{{ .workflow.input.tags.constructor }}"), /missing value/);
  });
  await t.step("own __proto__ keys from parsed JSON are not readable either", () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    assert.throws(() => render("{{ .__proto__.polluted }}", parsed), /missing value/);
    assert.equal(render("{{ .ok }}", parsed), 1);
  });
  await t.step("getters are never invoked and functions are never called", () => {
    let called = false;
    const withGetter = Object.defineProperty({}, "secret", {
      enumerable: true,
      get() {
        called = true;
        return 1;
      },
    });
    assert.throws(() => render("{{ .secret }}", withGetter), /missing value/);
    assert.equal(render("{{ .a == .b }}", { a: withGetter, b: {} }), true);
    assert.equal(called, false);
    assert.throws(() => render("{{ .fn }}", { fn: () => "ran" }), /missing value/);
  });
  await t.step("renderValue keeps a __proto__ key as a key and does not touch Object.prototype", () => {
    const value = JSON.parse('{"__proto__": {"polluted": "{{ .workflow.id }}"}}');
    const out = renderValue(value, ctx) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(out, "__proto__")?.value, { polluted: "weather" });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
  await t.step("nesting depth is bounded", () => {
    assert.equal(render(`{{ ${"(".repeat(60)}1${")".repeat(60)} }}`), 1);
    assert.match(
      templateError(() => compileTemplate(`{{ ${"(".repeat(65)}1${")".repeat(65)} }}`)).message,
      /deeper than 64/,
    );
    assert.match(
      templateError(() => compileTemplate(`{{ ${"!".repeat(10_000)}true }}`)).message,
      /deeper than 64/,
    );
    assert.match(
      templateError(() => compileTemplate(`{{ .a${" | json".repeat(100)} }}`)).message,
      /deeper than 64/,
    );
    assert.match(
      templateError(() =>
        compileTemplate(`{{ ${"len(".repeat(40)}.a${")".repeat(40)} | ${"upper | ".repeat(30)}json }}`)
      )
        .message,
      /deeper than 64/,
    );
  });
  await t.step("long flat chains are fine", () => {
    assert.equal(render(`{{ ${Array(5_000).fill("false").join(" || ")} || true }}`), true);
  });
  await t.step("template length is bounded; plain strings are not", () => {
    const long = "{{ 1 }}" + "x".repeat(64 * 1024);
    assert.match(templateError(() => compileTemplate(long)).message, /limit is 65536/);
    const plain = "x".repeat(200_000);
    assert.equal(compileTemplate(plain).render(ctx), plain);
  });
  await t.step("unrenderable and cyclic context values become TemplateErrors", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.match(
      templateError(() => render("x{{ .c }}", { c: cyclic })).message,
      /cannot render value as JSON/,
    );
    assert.match(
      templateError(() => render("{{ json(.n) }}", { n: 1n })).message,
      /cannot render value as JSON/,
    );
    const other: Record<string, unknown> = {};
    other.self = other;
    assert.match(
      templateError(() => render("{{ .a == .b }}", { a: cyclic, b: other })).message,
      /nested deeper/,
    );
  });
});

Deno.test("compileTemplate caches by source", () => {
  assert.equal(compileTemplate("{{ .cached }}"), compileTemplate("{{ .cached }}"));
  assert.ok(Object.isFrozen(compileTemplate("{{ .cached }}")));
});

Deno.test("references", async (t) => {
  await t.step("lists every path in source order without duplicates, including guarded ones", () => {
    const tpl = compileTemplate(
      "{{ .tasks.get-weather.output }} {{ default(.workflow.input.city, .env.CITY) }} " +
        "{{ .tasks.get-weather.output }}",
    );
    assert.deepEqual(tpl.references(), [
      ["tasks", "get-weather", "output"],
      ["workflow", "input", "city"],
      ["env", "CITY"],
    ]);
  });
  await t.step("finds paths in every construct", () => {
    const tpl = compileTemplate("{{ !(.a == .b) && (.c < .d || .e | default(.f) | json) }}");
    assert.deepEqual(tpl.references(), [["a"], ["b"], ["c"], ["d"], ["e"], ["f"]]);
  });
  await t.step("returns copies, so callers cannot corrupt the cached template", () => {
    const tpl = compileTemplate("{{ .x.y }}");
    tpl.references()[0].push("z");
    assert.deepEqual(tpl.references(), [["x", "y"]]);
  });
  await t.step("templateReferences walks objects and lists", () => {
    const value = { with: { city: "{{ .workflow.input.city }}", list: ["{{ .item }}", 3, "plain"] }, n: 1 };
    assert.deepEqual(templateReferences(value), [["workflow", "input", "city"], ["item"]]);
    assert.deepEqual(templateReferences("{{ .a }}-{{ .a }}"), [["a"]]);
    assert.deepEqual(templateReferences(42), []);
  });
  await t.step("templateReferences reports syntax errors with the location in the value", () => {
    const err = templateError(() => templateReferences({ with: { list: ["ok", "{{ .a"] } }));
    assert.deepEqual(err.valuePath, ["with", "list", 1]);
    assert.equal(err.position, 0);
    assert.match(err.message, /\(in with\.list\[1\]\)$/);
    assert.ok(err.cause instanceof TemplateError);
  });
});

Deno.test("renderValue", async (t) => {
  await t.step("renders every string deep, keeps keys and non-strings", () => {
    const date = new Date(0);
    const value = {
      "{{ .key }}": "{{ .workflow.input.days }}",
      nested: [{ city: "in {{ .workflow.input.city }}" }, 1, true, null, date],
    };
    assert.deepEqual(renderValue(value, ctx), {
      "{{ .key }}": 3,
      nested: [{ city: "in Lisbon" }, 1, true, null, date],
    });
    assert.equal(renderValue("{{ .index }}", ctx), 0);
    assert.equal(renderValue(7, ctx), 7);
  });
  await t.step("does not modify its input", () => {
    const value = { a: ["{{ .index }}"] };
    renderValue(value, ctx);
    assert.deepEqual(value, { a: ["{{ .index }}"] });
  });
  await t.step("errors say where in the value they happened", () => {
    const err = templateError(() => renderValue({ with: { weather: "{{ .tasks.nope.output }}" } }, ctx));
    assert.equal(err.message, 'missing value at .tasks.nope.output: .tasks has no "nope" (in with.weather)');
    assert.deepEqual(err.valuePath, ["with", "weather"]);
    assert.equal(err.path, "tasks.nope.output");
    assert.equal(templateError(() => renderValue("{{ .nope }}", ctx)).valuePath, undefined);
  });
  await t.step("a cyclic value is an error, shared references are fine", () => {
    const shared = { s: "{{ .index }}" };
    assert.deepEqual(renderValue({ a: shared, b: shared }, ctx), { a: { s: 0 }, b: { s: 0 } });
    const cyclic: Record<string, unknown> = { x: "{{ .index }}" };
    cyclic.again = [cyclic];
    assert.deepEqual(templateError(() => renderValue(cyclic, ctx)).valuePath, ["again", 0]);
  });
});

Deno.test("containsTemplate", () => {
  assert.equal(containsTemplate("a {{ .b }}"), true);
  assert.equal(containsTemplate("{{"), true);
  assert.equal(containsTemplate("a { b } }}"), false);
});
