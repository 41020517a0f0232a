/**
 * What the templates of one execution's tasks see: the context (`.workflow`, `.tasks` of the innermost scope,
 * `.env`, and the scope's own values such as `.item`) and the env of each task, its tool or agent.
 */
import type { TemplateContext } from "../../../pkg/tplengine/mod.ts";
import type { Project, Workflow } from "../project/mod.ts";
import type { Scope } from "../task/runners/mod.ts";
import type { TaskConfig } from "../task/schema.ts";
import { asTaskFailure, mergeEnv, type ResultScope } from "../task/template_scope.ts";

/** Scope fields that are the driver's bookkeeping, not values templates read. */
const NOT_TEMPLATE_VALUES = new Set(["parentExecId", "results", "abort", "live"]);

export class ExecutionTemplates {
  /** The env every task starts from (project, process and workflow), merged once per activation. */
  private baseEnv?: Record<string, string>;

  constructor(
    private readonly project: Project,
    private readonly workflow: Workflow,
    private readonly execId: string,
    private readonly input: unknown,
    private readonly processEnv: Record<string, string>,
    /** The results of the workflow's own steps (the outermost scope). */
    private readonly rootResults: ResultScope,
  ) {}

  /** The template context of this execution, with the scope's own values. */
  context(scope: Partial<Scope> = {}): TemplateContext {
    const context: TemplateContext = {
      workflow: { id: this.workflow.id, exec_id: this.execId, input: this.input },
      tasks: (scope.results ?? this.rootResults).view(),
      env: this.env(undefined, undefined, undefined),
    };
    for (const [k, v] of Object.entries(scope)) {
      if (v !== undefined && !NOT_TEMPLATE_VALUES.has(k)) context[k] = v;
    }
    return context;
  }

  /**
   * The context of `task`'s own templates (`with`, `if`, `outputs`, a wait's `condition`, …): the execution's,
   * with the task's `env` over the workflow's, as docs/templates.md orders `.env`. Its tool's or agent's `env`
   * is what the tool or the agent's prompt reads, not the task's fields.
   */
  taskContext(task: TaskConfig, scope: Partial<Scope>, key: string): TemplateContext {
    const context = this.context(scope);
    return task.env ? { ...context, env: this.env(task, undefined, context, key) } : context;
  }

  /**
   * The env a task (and its tool or agent) sees; see mergeEnv for the precedence. A template error in the
   * task's `env` (field `env`) or its tool's (field `tool.env`) fails the task at `key` with template_error.
   */
  env(
    task: TaskConfig | undefined,
    own: Record<string, string> | undefined,
    base: TemplateContext | undefined,
    key = task?.id ?? "(workflow)",
  ): Record<string, string> {
    const workflowScope = { workflow: { id: this.workflow.id, exec_id: this.execId, input: this.input } };
    this.baseEnv ??= mergeEnv(
      [this.project.envFile, this.processEnv, this.project.env, this.workflow.config.env],
      workflowScope,
    );
    let env = this.baseEnv;
    const layers: Array<[Record<string, string> | undefined, string]> = [[task?.env, "env"], [
      own,
      "tool.env",
    ]];
    for (const [layer, field] of layers) {
      if (!layer) continue;
      try {
        env = mergeEnv([layer], base ?? workflowScope, env);
      } catch (e) {
        throw asTaskFailure(e, key, field);
      }
    }
    return env;
  }
}
