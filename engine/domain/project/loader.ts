/**
 * Loading a project: read every file, validate it against its schema, index definitions, then run the checks
 * that need the whole project. Every problem of every file is collected; nothing stops at the first.
 *
 * @module
 */

import { join, relative, resolve } from "node:path";
import type { AgentConfig, ModelConfig } from "../agent/schema.ts";
import type { McpServerConfig } from "../mcp/schema.ts";
import {
  ConfigError,
  type Diagnostic,
  type PathSegment,
  ROOT_PATH,
  sortDiagnostics,
} from "../diagnostics.ts";
import type { ToolConfig } from "../tool/schema.ts";
import { type Analysis, DiagnosticList, type LoadedWorkflow } from "./analysis.ts";
import { runChecks } from "./checks.ts";
import {
  buildPartialConfig,
  indexById,
  indexToolsAndAgents,
  trustedFields,
  validUnder,
} from "./definitions.ts";
import { parseEnvFile } from "./env_file.ts";
import { loadFileReferences } from "./load_file_references.ts";
import { buildWorkflow } from "./load_workflow.ts";
import { registerFileDefinitions } from "./resolve_use.ts";
import type { ProjectConfig } from "./schema.ts";
import { validateSchema } from "./schema_validation.ts";
import { recoverWorkflowId } from "./unreadable_workflow.ts";
import type { LoadOptions, Project } from "./types.ts";
import { fsErrorText } from "../../../pkg/utils/fs_error_text.ts";
import { MAX_FILE_BYTES, notThere, readYamlFile, type YamlSource } from "./yaml_source.ts";

/** Lists of compozy.yaml whose items are checked one by one: a bad item leaves the others usable. */
const PROJECT_ITEM_LISTS = new Set(["workflows", "models", "mcp", "tools", "agents"]);

/** Name of the project file in a project directory. */
export const PROJECT_FILE = "compozy.yaml";

export type { LoadOptions } from "./types.ts";

/**
 * Loads and checks the project in `dir`.
 *
 * @example
 * ```ts ignore
 * const project = await loadProject("examples/hello");
 * console.log([...project.workflows.keys()]);
 * ```
 * @throws {ConfigError} with every diagnostic of the run when any of them is an error.
 */
export async function loadProject(dir: string, opts: LoadOptions = {}): Promise<Project> {
  const { project, diagnostics } = await analyzeProject(dir, opts);
  if (!project || diagnostics.some((d) => d.severity === "error")) throw new ConfigError(diagnostics);
  project.warnings = diagnostics;
  return project;
}

/** Every diagnostic (errors and warnings) of the project in `dir`; config problems never throw. */
export async function checkProject(dir: string, opts: LoadOptions = {}): Promise<Diagnostic[]> {
  return (await analyzeProject(dir, opts)).diagnostics;
}

async function analyzeProject(
  dir: string,
  opts: LoadOptions,
): Promise<{ project?: Project; diagnostics: Diagnostic[] }> {
  const diagnostics = new DiagnosticList();
  const root = resolve(dir);
  const file = join(root, PROJECT_FILE);
  const source = await readSource(file, diagnostics, "project file", PROJECT_FILE);
  if (!source) return { diagnostics: sortDiagnostics(diagnostics.items) };
  const analysis = await indexProject(root, source, diagnostics);
  for (const loaded of analysis.workflows) {
    if (loaded.inProject) analysis.project.workflows.set(loaded.workflow.id, loaded.workflow);
  }
  await loadFileReferences(analysis, diagnostics);
  registerFileDefinitions(analysis.project, analysis.fileDefinitions);
  await runChecks(analysis, diagnostics, opts);
  return { project: analysis.project, diagnostics: sortDiagnostics(diagnostics.items) };
}

/** Reads a YAML file, reporting a missing file (`what`, as `written`) at the file itself. */
async function readSource(
  file: string,
  diagnostics: DiagnosticList,
  what: string,
  written: string,
): Promise<YamlSource | undefined> {
  const read = await readYamlFile(file);
  if (read.kind === "ok") return read.source;
  if (read.kind === "invalid") diagnostics.add(...read.diagnostics);
  else {diagnostics.add({
      severity: "error",
      file,
      line: 1,
      col: 1,
      path: ROOT_PATH,
      message: notThere(read, what, written),
    });}
  return undefined;
}

async function indexProject(
  root: string,
  source: YamlSource,
  diagnostics: DiagnosticList,
): Promise<Analysis> {
  const schemaErrors = validateSchema("project", source);
  diagnostics.add(...schemaErrors);
  const isValid = validUnder(schemaErrors);
  const value = source.value;
  // Fields with schema errors are left out (lists of definitions are filtered item by item below), so the
  // checks of the rest never read a value of the wrong shape.
  const config = trustedFields(
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : {},
    isValid,
    PROJECT_ITEM_LISTS,
  ) as unknown as ProjectConfig;
  const analysis: Analysis = {
    project: undefined as unknown as Project,
    projectSource: source,
    workflows: [],
    fileDefinitions: new Map(),
    sites: new Map(),
    partial: new Map(),
    broken: {
      models: new Set(),
      mcp: new Set(),
      files: new Set(),
      workflows: new Set(),
    },
    unreadableWorkflows: [],
    mcpIndex: new Map(),
  };
  const common = { diagnostics, isValid };
  const mcpAt = (server: McpServerConfig, path: PathSegment[]) => {
    analysis.mcpIndex.set(server, path[1] as number);
    return server;
  };
  analysis.project = {
    root,
    file: source.file,
    config,
    warnings: [],
    env: isValid(["env"]) ? config.env ?? {} : {},
    envFile: isValid(["env_file"])
      ? await readEnvFile(root, config.env_file ?? ".env", source, diagnostics)
      : {},
    models: indexById<ModelConfig, ModelConfig>(config.models, source, ["models"], "model", {
      ...common,
      broken: analysis.broken.models,
      build: (model) => model,
      buildPartial: (item, path) => buildPartialConfig<ModelConfig>(item, path, schemaErrors, analysis),
    }),
    mcp: indexById<McpServerConfig, McpServerConfig>(config.mcp, source, ["mcp"], "MCP server", {
      ...common,
      broken: analysis.broken.mcp,
      build: (server, path) => mcpAt(server, path),
      buildPartial: (item, path) =>
        mcpAt(buildPartialConfig<McpServerConfig>(item, path, schemaErrors, analysis), path),
    }),
    workflows: new Map(),
    ...indexToolsAndAgents(
      { tools: config.tools as ToolConfig[] | undefined, agents: config.agents as AgentConfig[] | undefined },
      source,
      analysis,
      { ...common, schemaErrors },
    ),
  };
  analysis.workflows = await loadWorkflows(root, source, config, analysis, diagnostics, isValid);
  return analysis;
}

async function loadWorkflows(
  root: string,
  projectSource: YamlSource,
  config: ProjectConfig,
  analysis: Analysis,
  diagnostics: DiagnosticList,
  isValid: (path: (string | number)[]) => boolean,
): Promise<LoadedWorkflow[]> {
  const entries = (Array.isArray(config.workflows) ? config.workflows : [])
    .map((entry, i) => ({ entry, path: ["workflows", i, "source"] }))
    .filter(({ path }) => isValid(path.slice(0, 2)));
  // Files are independent until they are indexed: read them at once.
  const reads = await Promise.all(entries.map(({ entry }) => readYamlFile(resolve(root, entry.source))));
  const loaded: LoadedWorkflow[] = [];
  const byId = new Map<string, LoadedWorkflow>();
  const files = new Set<string>();
  reads.forEach((read, i) => {
    const { entry, path } = entries[i];
    const file = resolve(root, entry.source);
    if (files.has(file)) {
      diagnostics.error(projectSource, path, `workflow file ${entry.source} is listed twice`);
      return;
    }
    files.add(file);
    if (read.kind === "missing") {
      diagnostics.error(projectSource, path, notThere(read, "workflow file", entry.source));
      // Its id is unknown (files have no naming convention): a reference may name it, like an unreadable one.
      analysis.unreadableWorkflows.push({ path, source: entry.source, missing: true });
      return;
    }
    if (read.kind === "invalid") {
      diagnostics.add(...read.diagnostics);
      const id = read.text === undefined ? undefined : recoverWorkflowId(read.text);
      if (id === undefined) analysis.unreadableWorkflows.push({ path, source: entry.source, missing: false });
      else analysis.broken.workflows.add(id);
      return;
    }
    const schemaErrors = validateSchema("workflow", read.source);
    diagnostics.add(...schemaErrors);
    // A file with schema errors is still checked as far as it can be: its other errors show in the same run.
    const workflow = buildWorkflow(read.source, schemaErrors, analysis, diagnostics, entry.source);
    if (!workflow) return;
    loaded.push(workflow);
    if (!workflow.inProject) return;
    const first = byId.get(workflow.workflow.id);
    if (first) {
      diagnostics.error(
        read.source,
        ["id"],
        `duplicate workflow id "${workflow.workflow.id}" (first declared in ${
          relative(root, first.source.file)
        })`,
      );
      workflow.inProject = false;
      return;
    }
    byId.set(workflow.workflow.id, workflow);
  });
  return loaded;
}

/** Reads the env file; a missing file is an empty one. */
/**
 * Reads the env file. A missing one is fine (CONFIG.md); one that exists but cannot be read (a folder, no
 * permission) is the user's error, reported at `env_file` in compozy.yaml rather than thrown as an internal one.
 */
async function readEnvFile(
  root: string,
  name: string,
  project: YamlSource,
  diagnostics: DiagnosticList,
): Promise<Record<string, string>> {
  const file = resolve(root, name);
  let text: string;
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) {
      diagnostics.error(
        project,
        ["env_file"],
        `${name} is ${info.isDirectory ? "a folder" : "not a file"}, not an env file`,
      );
      return {};
    }
    if (info.size > MAX_FILE_BYTES) {
      diagnostics.add({
        severity: "error",
        file,
        line: 1,
        col: 1,
        path: ROOT_PATH,
        message: "file is over 10 MB; files over 10 MB are refused",
      });
      return {};
    }
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    diagnostics.error(project, ["env_file"], `cannot read the env file ${name}: ${fsErrorText(err)}`);
    return {};
  }
  const parsed = parseEnvFile(file, text);
  diagnostics.add(...parsed.diagnostics);
  return parsed.values;
}
