/**
 * Checks of templates at load time: every template compiles; `.tasks.X` names a task that exists and, inside
 * a task, one that can have run before it; `.env.NAME` is set somewhere (a warning: it may be set at run time).
 *
 * @module
 */

import { compileTemplate, containsTemplate, TemplateError } from "../../../pkg/tplengine/mod.ts";
import { type Node, parseTemplate } from "../../../pkg/tplengine/parser.ts";
import type { PathSegment } from "../diagnostics.ts";
import { flowStep, type TaskSite } from "../task/walk.ts";
import {
  buildTaskGraph,
  reachableSteps,
  stepAncestors,
  type StepAncestry,
  type TaskGraph,
} from "../workflow/task_graph.ts";
import type { Analysis, DiagnosticList, LoadedWorkflow } from "./analysis.ts";
import type { LoadOptions } from "./types.ts";
import { didYouMean } from "./suggest.ts";
import { diagnosticAt, locateInString, type YamlSource } from "./yaml_source.ts";

/** Task fields whose strings are templates (inline child tasks are checked as tasks of their own). */
const TASK_TEMPLATE_FIELDS = [
  "with",
  "env",
  "if",
  "outputs",
  "condition",
  "items",
  "filter",
  "signal",
  "target",
];

/** Every root a template can read somewhere (docs/templates.md, "Paths"). */
const ROOTS = ["workflow", "tasks", "env", "item", "index", "input", "signal", "error", "output", "payload"];

/** Where each root that is not everywhere is set, for the message about reading it elsewhere. */
const ROOT_PLACES: Record<string, string> = {
  input: "in an action's prompt (the workflow's input is .workflow.input)",
  signal: "in a wait's condition",
  output: "in `outputs` (a workflow's, or a task's that has a raw result: not an aggregate's)",
  payload: "in a webhook trigger's input",
  item: "inside a collection's task (and in its filter)",
  index: "inside a collection's task (and in its filter)",
  error: "in the task an `on_error` or a wait's `on_timeout` leads to (and in its children)",
};

/**
 * Called for each path a template reads, with the field path of the string that reads it; `guarded` when
 * the path is the value of a `default(…)`, where a missing value is no error.
 */
type OnReference = (ref: string[], path: PathSegment[], guarded: boolean) => void;

interface Checker {
  diagnostics: DiagnosticList;
  /** Every env name set anywhere; `undefined` when the process environment cannot be read. */
  envNames: Set<string> | undefined;
  /** `config.input` of the workflow whose strings are being checked; `.workflow.input.X` is checked against it. */
  inputSchema?: unknown;
}

export function checkTemplates(analysis: Analysis, diagnostics: DiagnosticList, opts: LoadOptions): void {
  const checker: Checker = { diagnostics, envNames: knownEnvNames(analysis, opts) };
  const { projectSource, project } = analysis;
  for (const field of ["env", "models", "tools", "agents"]) {
    checkStrings(checker, projectSource, [field], (project.config as Record<string, unknown>)[field]);
  }
  for (const [def, site] of analysis.sites) {
    if (site.path.length === 0) checkStrings(checker, site.source, [], def); // a definition in its own file
  }
  for (const loaded of analysis.workflows) checkWorkflow(checker, loaded);
}

function checkWorkflow(checker: Checker, loaded: LoadedWorkflow): void {
  checker.inputSchema = (loaded.workflow.config.config as { input?: unknown } | undefined)?.input;
  try {
    checkWorkflowStrings(checker, loaded);
  } finally {
    checker.inputSchema = undefined;
  }
}

function checkWorkflowStrings(checker: Checker, loaded: LoadedWorkflow): void {
  const { source, workflow, tasks, brokenTaskIds, complete } = loaded;
  const config = workflow.config as Record<string, unknown>;
  for (const field of ["env", "tools", "agents"]) {
    checkStrings(checker, source, [field], config[field]);
  }
  checkTriggerStrings(checker, loaded);
  const sitesById = new Map(tasks.map((s) => [s.task.id, s]));
  const graph = buildTaskGraph(tasks);
  const ancestors = stepAncestors(graph);
  const descendants = descendantsBySite(tasks);
  const owners = ownersOf(descendants);
  // The steps whose success ends the workflow, each with the tasks that can have run by then: a workflow's
  // `outputs` are rendered there (CONFIG.md's own example reads `.tasks.advise` at its `apologise` ending).
  const endings = complete ? endingSteps(tasks, graph) : [];
  const ranBy = new Map(endings.map((site) => {
    const before = ranBefore(site, ancestors, descendants, owners, sitesById);
    const inside = descendants.get(site.task.id)!;
    return [site.task.id, (id: string) => before(id) || id === site.task.id || inside.has(id)];
  }));
  checkStrings(checker, source, ["outputs"], config.outputs, (ref, path, guarded) => {
    if (!rootReadable(checker, source, path, ref, ["workflow", "tasks", "env", "output"], guarded)) return;
    const id = taskIdOf(ref);
    if (id !== undefined && !sitesById.has(id) && !brokenTaskIds.has(id)) {
      unknownTask(checker, source, path, id, sitesById);
      return;
    }
    // A string with a `default` anywhere is left alone: the fallback of one path may be another that is set
    // exactly when the first is not (`.tasks.advise… | default(.tasks.apologise…)`).
    const withDefault = /\bdefault\b/.test(String(valueAt(config, path)));
    const unset = id === undefined || guarded || withDefault
      ? undefined
      : endings.find((e) => !ranBy.get(e.task.id)!(id));
    if (unset) {
      checker.diagnostics.warning(
        source,
        path,
        `.tasks.${id} may be unset: the workflow can end at task "${unset.task.id}" without task "${id}" ` +
          "having run, and that run then fails here (give a fallback with `default`)",
      );
    }
  });
  // `.error` is set in a step that an `on_error` or a wait's `on_timeout` went to, and in its children; any
  // other step (one after it, a route of a router it is) runs with none (outside review brk-eng3 O3).
  const errorTargets = new Set(
    tasks.flatMap(({ task }) => [task.on_error?.next, task.type === "wait" ? task.on_timeout : undefined]),
  );
  for (const site of tasks) {
    const before = ranBefore(site, ancestors, descendants, owners, sitesById);
    const inside = descendants.get(site.task.id)!;
    for (const field of TASK_TEMPLATE_FIELDS) {
      const value = (site.task as Record<string, unknown>)[field];
      // A task's `outputs` are rendered after its children ran.
      const readable = field === "outputs" ? (id: string) => before(id) || inside.has(id) : before;
      const inItem = insideCollectionItem(site) || (field === "filter" && site.task.type === "collection");
      const roots = ["workflow", "tasks", "env", "item", "index"];
      // With tasks left out for schema errors, which steps their `on_error` leads to is unknown.
      if (!complete || errorTargets.has(flowStep(site).task.id)) roots.push("error");
      // An aggregate's `outputs` are its output: there is no raw result to reshape.
      if (field === "outputs" && site.task.type !== "aggregate") roots.push("output");
      if (field === "condition" && site.task.type === "wait") roots.push("signal");
      checkStrings(checker, source, [...site.path, field], value, (ref, path, guarded) => {
        if (!rootReadable(checker, source, path, ref, roots, guarded)) return;
        if ((ref[0] === "item" || ref[0] === "index") && !inItem) {
          checker.diagnostics.error(
            source,
            path,
            `.${ref[0]} is only set inside a collection's task (and in its filter)`,
          );
          return;
        }
        const id = taskIdOf(ref);
        if (id === undefined || readable(id) || brokenTaskIds.has(id)) return;
        if (!sitesById.has(id)) unknownTask(checker, source, path, id, sitesById);
        // Which task can run before which is known only when every task could be read.
        else if (complete) {
          checker.diagnostics.error(
            source,
            path,
            `.tasks.${id} cannot be read here: task "${id}" cannot have run before task "${site.task.id}"`,
          );
        }
      });
    }
  }
}

/**
 * A schedule's `input` renders with `.env` alone at each tick; a webhook's `input` with `.payload` and `.env`
 * for each call, its `secret` with `.env` once (engine/triggers).
 */
function checkTriggerStrings(checker: Checker, loaded: LoadedWorkflow): void {
  for (const { trigger, index: i } of loaded.triggers) {
    const fields: [string, unknown, string[]][] = trigger.type === "webhook"
      ? [["input", trigger.config.input, ["payload", "env"]], ["secret", trigger.config.secret, ["env"]]]
      : [["input", trigger.config.input, ["env"]]];
    for (const [field, value, roots] of fields) {
      const what = `a ${trigger.type === "webhook" ? "webhook" : "schedule"}'s ${field}`;
      checkStrings(checker, loaded.source, ["triggers", i, "config", field], value, (ref, path, guarded) => {
        if (!ROOTS.includes(ref[0]) || roots.includes(ref[0])) return;
        const readable = roots.map((r) => `.${r}`).join(" and ");
        const message = `.${ref[0]} is not set in ${what}, which reads ${readable} only`;
        if (guarded) {
          checker.diagnostics.warning(loaded.source, path, `${message}; \`default\` always renders`);
        } else checker.diagnostics.error(loaded.source, path, message);
      });
    }
  }
}

/**
 * Whether a template in a task or a workflow's `outputs` may read `ref`'s root (`roots`); reports the root
 * when it is set elsewhere only. Roots that are set nowhere are reported by checkTemplate for every string.
 * A path given to `default(…)` (`guarded`) is a warning: it renders, but always the default (`.signal.payload.ok
 * | default(false)` in the task after a wait is false in every run, though the wait took a payload).
 */
function rootReadable(
  checker: Checker,
  source: YamlSource,
  path: PathSegment[],
  ref: string[],
  roots: string[],
  guarded: boolean,
): boolean {
  const root = ref[0];
  if (root === undefined || roots.includes(root) || !ROOTS.includes(root)) return true;
  const message = `.${root} is only set ${ROOT_PLACES[root]}`;
  if (guarded) checker.diagnostics.warning(source, path, `${message}; \`default\` always renders`);
  else checker.diagnostics.error(source, path, message);
  return false;
}

function taskIdOf(ref: string[]): string | undefined {
  return ref[0] === "tasks" && ref.length > 1 ? ref[1] : undefined;
}

function unknownTask(
  checker: Checker,
  source: YamlSource,
  path: PathSegment[],
  id: string,
  sitesById: Map<string, TaskSite>,
): void {
  checker.diagnostics.error(
    source,
    path,
    `.tasks.${id}: unknown task "${id}"${didYouMean(id, sitesById.keys())}`,
  );
}

/**
 * Ids of the tasks run inside each task whose results stay readable after it (children, recursively; not
 * inline routes, which are steps). A collection's item tasks are not: each item has its own scope, and
 * after the collection there is no one item to read (docs/yaml-reference.md, "What `.tasks` sees").
 */
function descendantsBySite(sites: readonly TaskSite[]): Map<string, Set<string>> {
  const out = new Map(sites.map((s) => [s.task.id, new Set<string>()]));
  for (const site of sites) {
    for (let cur = site; cur.role === "child" && cur.parent; cur = cur.parent) {
      if (cur.parent.task.type === "collection") break;
      out.get(cur.parent.task.id)!.add(site.task.id);
    }
  }
  return out;
}

/** Whether `site` runs as (or inside) a collection's item, where `.item` and `.index` are set. */
function insideCollectionItem(site: TaskSite): boolean {
  for (let cur = site; cur.role === "child" && cur.parent; cur = cur.parent) {
    if (cur.parent.task.type === "collection") return true;
  }
  return false;
}

/**
 * The reachable steps whose success ends the workflow: no success edge leaves them (`final`, or no next task).
 * A router never does (no route matching fails it); failure edges (`on_error`, a wait's `on_timeout`) do not
 * count, since a failure does not end the workflow successfully.
 */
function endingSteps(sites: readonly TaskSite[], graph: TaskGraph): TaskSite[] {
  const reachable = reachableSteps(graph);
  const onFailure = (path: PathSegment[]) =>
    path.at(-2) === "on_error" || (path.at(-1) === "on_timeout" && path.at(-2) !== "routes");
  return sites.filter((site) =>
    site.role !== "child" && site.task.type !== "router" && reachable.has(site.task.id) &&
    !(graph.successors.get(site.task.id) ?? []).some((edge) => !onFailure(edge.path))
  );
}

/** The value at `path` (field names and list indexes) inside `root`. */
function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let value = root;
  for (const segment of path) value = (value as Record<PathSegment, unknown> | undefined)?.[segment];
  return value;
}

/**
 * Whether a task (by id) can have finished before `site` starts: a step before it, a task inside one, or an
 * earlier sibling in a composite. Asked per id, not listed: a list per task made validation quadratic in
 * memory (see stepAncestors).
 */
function ranBefore(
  site: TaskSite,
  ancestors: StepAncestry,
  descendants: Map<string, Set<string>>,
  owners: Map<string, string[]>,
  sitesById: Map<string, TaskSite>,
): (id: string) => boolean {
  const step = flowStep(site).task.id;
  // In a composite, earlier siblings have finished.
  const siblings = new Set<string>();
  for (let cur = site; cur.role === "child" && cur.parent; cur = cur.parent) {
    const parent = cur.parent.task;
    if (parent.type !== "composite") continue;
    for (const sibling of parent.tasks) {
      if (sibling === cur.task) break;
      if (sitesById.get(sibling.id)?.task !== sibling) continue;
      siblings.add(sibling.id);
      for (const d of descendants.get(sibling.id) ?? []) siblings.add(d);
    }
  }
  return (id) =>
    ancestors.has(step, id) || (owners.get(id) ?? []).some((owner) => ancestors.has(step, owner)) ||
    siblings.has(id);
}

/** For each task, the tasks it runs inside whose results include it (the inverse of `descendants`). */
function ownersOf(descendants: Map<string, Set<string>>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [owner, inside] of descendants) {
    for (const id of inside) out.set(id, [...out.get(id) ?? [], owner]);
  }
  return out;
}

/** Compiles every template string inside `value`, reporting failures, unset env names and references. */
function checkStrings(
  checker: Checker,
  source: YamlSource,
  path: PathSegment[],
  value: unknown,
  onReference?: OnReference,
): void {
  if (typeof value === "string") {
    if (containsTemplate(value)) checkTemplate(checker, source, path, value, onReference);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => checkStrings(checker, source, [...path, i], item, onReference));
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      checkStrings(checker, source, [...path, key], item, onReference);
    }
  }
}

function checkTemplate(
  checker: Checker,
  source: YamlSource,
  path: PathSegment[],
  text: string,
  onReference?: OnReference,
): void {
  let refs: string[][];
  try {
    refs = compileTemplate(text).references();
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    const at = err.position === undefined ? undefined : locateInString(source, path, err.position);
    const d = diagnosticAt(source, path, `invalid template: ${err.message}`);
    checker.diagnostics.add(at ? { ...d, ...at } : d);
    return;
  }
  const guarded = text.includes("default") ? defaultGuarded(text) : new Set<string>();
  for (const ref of refs) {
    if (ref.length > 0 && !ROOTS.includes(ref[0])) {
      checker.diagnostics.error(
        source,
        path,
        `.${ref[0]}: templates read ${ROOTS.map((r) => `.${r}`).join(", ")}${
          didYouMean(ref[0], ROOTS).replace(/"([^"]+)"/, '".$1"')
        }`,
      );
      continue;
    }
    const isGuarded = guarded.has(ref.join("."));
    // A name given to `default(…)` may be missing by design: the fallback renders (CONFIG.md).
    if (
      ref[0] === "env" && ref.length > 1 && !isGuarded && checker.envNames && !checker.envNames.has(ref[1])
    ) {
      checker.diagnostics.warning(
        source,
        path,
        `.env.${
          ref[1]
        } is not set in any env: map, the process environment or the env file; rendering fails until it is`,
      );
    }
    checkFieldOf(checker, source, path, ref, isGuarded);
    if (ref[0] === "workflow" && ref[1] === "input") {
      checkInputPath(checker, source, path, ref.slice(2), isGuarded);
    }
    onReference?.(ref, path, isGuarded);
  }
}

/**
 * The fields the engine gives `.workflow`, a task under `.tasks.<id>` and `.signal` (execution_templates.ts,
 * runners/types.ts `failedView`): any other name is missing at every run.
 */
const FIELDS: Readonly<Record<string, { at: number; names: readonly string[] }>> = {
  workflow: { at: 1, names: ["input", "id", "exec_id"] },
  tasks: { at: 2, names: ["output", "status", "error"] },
  signal: { at: 1, names: ["payload"] },
};

/** The fields of an error, as `.error` and `.tasks.<id>.error` give it (runners/types.ts `failedView`). */
const ERROR_FIELDS: readonly string[] = ["message", "code"];

/**
 * `.tasks.t.outputz`, `.workflow.inputs`, `.error.mesage`: a field no run has fails every render (a warning
 * under `default`). A typo under `.error` failed the very task an `on_error` leads to, in every run.
 */
function checkFieldOf(
  checker: Checker,
  source: YamlSource,
  path: PathSegment[],
  ref: string[],
  guarded: boolean,
): void {
  const report = (at: number, what: string, names: readonly string[]) => {
    const name = ref[at];
    if (name === undefined || names.includes(name)) return;
    const message = `.${ref.slice(0, at + 1).join(".")}: ${what} has no field "${name}" (it has ${
      names.map((n) => `.${n}`).join(", ")
    })${didYouMean(name, [...names])}`;
    if (guarded) checker.diagnostics.warning(source, path, `${message}; \`default\` always renders`);
    else checker.diagnostics.error(source, path, message);
  };
  if (ref[0] === "error") report(1, "an error", ERROR_FIELDS);
  if (ref[0] === "tasks" && ref[2] === "error") report(3, "a task's error", ERROR_FIELDS);
  if (!Object.hasOwn(FIELDS, ref[0])) return;
  const fields = FIELDS[ref[0]];
  report(fields.at, ref[0] === "tasks" ? "a task" : `.${ref[0]}`, fields.names);
}

/** Paths (joined by `.`) given to `default(…)` as the value, where a missing value renders the fallback. */
function defaultGuarded(text: string): Set<string> {
  const out = new Set<string>();
  const visit = (node: Node): void => {
    if (node.type === "call" && node.name === "default" && node.args[0]?.type === "path") {
      out.add(node.args[0].segments.join("."));
    }
    const kids = node.type === "not"
      ? [node.operand]
      : node.type === "logical"
      ? node.operands
      : node.type === "compare"
      ? [node.left, node.right]
      : node.type === "call"
      ? node.args
      : [];
    kids.forEach(visit);
  };
  for (const part of parseTemplate(text)) if (part.type === "expr") visit(part.node);
  return out;
}

/**
 * `.workflow.input.a.b` against the workflow's input schema, as deep as it declares `properties`. A schema
 * that allows other fields (`additionalProperties` true or a schema) accepts any name; one that leaves it
 * out is taken to list its fields, since a name it does not list is far more often a typo than a field
 * the caller sends undeclared (an error; a warning when the path is given to `default(…)`).
 */
function checkInputPath(
  checker: Checker,
  source: YamlSource,
  path: PathSegment[],
  names: string[],
  guarded: boolean,
): void {
  let schema = checker.inputSchema;
  for (let depth = 0; depth < names.length; depth++) {
    if (typeof schema !== "object" || schema === null) return;
    const { properties, additionalProperties } = schema as Record<string, unknown>;
    if (typeof properties !== "object" || properties === null) return;
    if (additionalProperties !== undefined && additionalProperties !== false) return;
    // `additionalProperties: false` refuses every name its own `properties` do not list, whatever the
    // combined schemas declare (Ajv, as JSON Schema): only those can ever be read.
    const declared = additionalProperties === false
      ? (schema as Record<string, unknown>).patternProperties === undefined
        ? new Set(Object.keys(properties))
        : undefined
      : declaredFields(schema as Record<string, unknown>);
    if (!declared) return;
    const name = names[depth];
    if (!Object.hasOwn(properties, name)) {
      // Declared in a branch (`allOf`, `if`/`then`, …): a field the input may have; its own schema there is
      // not followed further.
      if (declared.has(name)) return;
      const field = [...names.slice(0, depth), name].join(".");
      const message = `.workflow.input.${field}: unknown input field "${name}"${
        didYouMean(name, [...declared])
      }`;
      // Under `default(…)` an undeclared field may be sent or not, and either renders: the schema does not
      // refuse it, so the project loads, and a typo still gets its hint.
      if (guarded) {
        checker.diagnostics.warning(source, path, `${message}; \`default\` renders when it is absent`);
      } else checker.diagnostics.error(source, path, message);
      return;
    }
    schema = (properties as Record<string, unknown>)[name];
  }
}

/** Keywords whose schemas apply to the same object as the one holding them, so may declare its fields. */
const BRANCH_LISTS = ["allOf", "anyOf", "oneOf"] as const;
const BRANCHES = ["if", "then", "else"] as const;

/**
 * The field names an object schema declares: its `properties` and those of the schemas combined with it
 * (`allOf`, `anyOf`, `oneOf`, `if`/`then`/`else`, `dependentSchemas`), which Ajv accepts in an input as well.
 * Undefined when it allows names no list holds (`patternProperties`, a `$ref`, `unevaluatedProperties`), where
 * no field can be called unknown.
 */
function declaredFields(schema: Record<string, unknown>, names = new Set<string>()): Set<string> | undefined {
  const { properties, unevaluatedProperties, dependentSchemas } = schema;
  if (
    schema.patternProperties !== undefined || schema.$ref !== undefined || schema.$dynamicRef !== undefined
  ) {
    return undefined;
  }
  if (unevaluatedProperties !== undefined && unevaluatedProperties !== false) return undefined;
  if (typeof properties === "object" && properties !== null) {
    for (const name of Object.keys(properties)) names.add(name);
  }
  const branches: unknown[] = [
    ...BRANCH_LISTS.flatMap((k) => Array.isArray(schema[k]) ? schema[k] as unknown[] : []),
    ...BRANCHES.map((k) => schema[k]),
    ...(typeof dependentSchemas === "object" && dependentSchemas !== null
      ? Object.values(dependentSchemas)
      : []),
  ];
  for (const branch of branches) {
    if (typeof branch !== "object" || branch === null) continue;
    if (!declaredFields(branch as Record<string, unknown>, names)) return undefined;
  }
  return names;
}

/** Env names set anywhere in the project, in the env file or in the process environment. */
function knownEnvNames(analysis: Analysis, opts: LoadOptions): Set<string> | undefined {
  const processEnv = opts.processEnv ?? readProcessEnv();
  if (!processEnv) return undefined;
  const names = new Set([...Object.keys(processEnv), ...Object.keys(analysis.project.envFile)]);
  const addMap = (env: unknown) => {
    if (typeof env === "object" && env !== null) { for (const name of Object.keys(env)) names.add(name); }
  };
  addMap(analysis.project.env);
  for (const def of analysis.sites.keys()) addMap(def.env);
  for (const { source, tasks, brokenTasks } of analysis.workflows) {
    // As written, errors or not: a name set in a field with a schema error is still set by the author.
    addMap((source.value as { env?: unknown }).env);
    for (const { task } of tasks) addMap(task.env);
    for (const task of brokenTasks) addMap((task as { env?: unknown } | null)?.env);
  }
  return names;
}

/** The process environment, or `undefined` without permission to read all of it (the check is then skipped). */
function readProcessEnv(): Record<string, string> | undefined {
  return Deno.permissions.querySync({ name: "env" }).state === "granted" ? Deno.env.toObject() : undefined;
}
