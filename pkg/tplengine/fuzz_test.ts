import assert from "node:assert/strict";
import { compileTemplate, renderValue, TemplateError, templateReferences } from "./mod.ts";

/** mulberry32: a tiny seeded PRNG so every failure reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// deno-fmt-ignore
const TOKENS = [
  "{{", "{{", "{{", "}}", "}}", " ", " ", "{", "}", ".", ".a", ".b", ".tasks", ".get-weather",
  ".output", ".0", ".1", ".__proto__", ".constructor", ".prototype", ".length", '"x"', "'y'", '"}}"',
  '"\\u00e9"', '"\\q', '"', "'", "\\", "42", "-1", "3.5", "1e3", "1.2.3", "true", "false", "null", "==",
  "!=", "<", "<=", ">", ">=", "&&", "||", "!", "(", ")", ",", "|", "=", "&", "default", "json", "len",
  "upper", "lower", "now", "foo", "(", "hello", "\n", "é", "😀",
];
const KEYS = ["a", "b", "tasks", "get-weather", "output", "0", "1", "__proto__", "constructor", "length"];

const pickFrom = <T>(rand: () => number, list: T[]): T => list[Math.floor(rand() * list.length)];

/** Token soup: mostly malformed, it exercises the lexer and the parser's error paths. */
function tokenSoup(rand: () => number): string {
  let s = rand() < 0.5 ? "{{ " : "";
  for (let n = 1 + Math.floor(rand() * 25); n > 0; n--) s += pickFrom(rand, TOKENS);
  return rand() < 0.5 ? s + " }}" : s;
}

/** A well-formed expression over the fuzz keys, so that awkward contexts reach the evaluator. */
function expression(rand: () => number, depth: number): string {
  const r = rand();
  if (depth > 4 || r < 0.3) {
    const path = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => "." + pickFrom(rand, KEYS)).join(
      "",
    );
    return pickFrom(rand, [path, path, path, "1", '"s"', "null", "true"]);
  }
  const sub = () => expression(rand, depth + 1);
  if (r < 0.5) return `${sub()} ${pickFrom(rand, ["==", "!=", "<", ">=", "&&", "||"])} (${sub()})`;
  if (r < 0.6) return `!${sub()}`;
  if (r < 0.75) {
    return `(${sub()} | ${pickFrom(rand, ["json", "default(0)", "len", "upper", "default(.a)"])})`;
  }
  return `${pickFrom(rand, ["json", "len", "lower", "upper"])}(${sub()})`;
}

/** Half token soup, half templates from the grammar, a few of those with one random token spliced in. */
function randomString(rand: () => number): string {
  if (rand() < 0.5) return tokenSoup(rand);
  const s = `${pickFrom(rand, ["", "x="])}{{ ${expression(rand, 0)} }}${pickFrom(rand, ["", " y"])}`;
  if (rand() > 0.2) return s;
  const at = Math.floor(rand() * s.length);
  return s.slice(0, at) + pickFrom(rand, TOKENS) + s.slice(at);
}

/** JSON-like data plus the awkward values real contexts might hold: cycles, bigints, functions, getters. */
function randomValue(rand: () => number, depth: number): unknown {
  const roll = rand();
  if (depth > 3 || roll < 0.3) {
    // deno-fmt-ignore
    const scalars: unknown[] = [
      null, true, false, 0, 1, -2.5, "", "s", "Lisbon", undefined, 10n, () => 1, Symbol("s"),
    ];
    return scalars[Math.floor(rand() * scalars.length)];
  }
  if (roll < 0.5) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  const obj: Record<string, unknown> = rand() < 0.1 ? Object.create(null) : {};
  for (let i = Math.floor(rand() * 4); i > 0; i--) {
    Object.defineProperty(obj, KEYS[Math.floor(rand() * KEYS.length)], {
      value: randomValue(rand, depth + 1),
      enumerable: true,
      configurable: true,
      writable: true,
    });
  }
  if (rand() < 0.05) obj.self = obj;
  if (rand() < 0.05) {
    Object.defineProperty(obj, "b", {
      enumerable: true,
      configurable: true,
      get() {
        throw new Error("getter ran");
      },
    });
  }
  return obj;
}

/** Runs `fn`, letting only a TemplateError escape; tells whether it succeeded, so the test can count. */
function onlyTemplateErrors(fn: () => unknown, seed: number, input: string): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof TemplateError) return false;
    assert.fail(`seed ${seed}: ${JSON.stringify(input)} threw ${err}`);
  }
}

Deno.test("random templates and contexts throw nothing but TemplateError", () => {
  let compiled = 0;
  let rendered = 0;
  for (let seed = 1; seed <= 20_000; seed++) {
    const rand = prng(seed);
    const source = randomString(rand);
    const ctx = randomValue(rand, 0) as Record<string, unknown>;
    if (!onlyTemplateErrors(() => compileTemplate(source), seed, source)) continue;
    const template = compileTemplate(source);
    const ok = onlyTemplateErrors(() => template.render(ctx), seed, source);
    if (template.isTemplate) [compiled, rendered] = [compiled + 1, rendered + Number(ok)];
    onlyTemplateErrors(() => renderValue({ k: [source, { n: source }] }, ctx), seed, source);
    onlyTemplateErrors(() => templateReferences([source]), seed, source);
  }
  // Guards against a generator that silently stops producing templates the evaluator accepts.
  assert.ok(compiled > 5_000, `only ${compiled} random templates compiled`);
  assert.ok(rendered > 1_000, `only ${rendered} random templates rendered`);
  assert.equal(Object.keys(Object.prototype).length, 0);
});
