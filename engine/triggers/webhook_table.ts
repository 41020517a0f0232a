/**
 * The webhook routes a project declares (`triggers: [{ type: webhook, config: { url, secret, input } }]`),
 * served by the API as `POST /api/webhooks/<url>`. Secrets are rendered once when the table is built; a
 * secret that cannot be rendered (an unset variable) makes its route refuse every call rather than accept
 * unsigned ones.
 *
 * @module
 */
import type { Project } from "../domain/project/types.ts";
import { renderValue, TemplateError } from "../../pkg/tplengine/mod.ts";
import { triggerEnv } from "./trigger_env.ts";

export interface WebhookRoute {
  /** The declared `url`, e.g. `/weather`. */
  path: string;
  workflowId: string;
  /** The rendered HMAC key; undefined when the route is unsigned. */
  secret?: string;
  /** Why the declared secret could not be rendered; the route refuses calls while this is set. */
  secretProblem?: string;
  /** The `input` mapping; undefined when the JSON body is the input. */
  input?: Record<string, unknown>;
  /** The env the mapping sees as `.env`. */
  env: Record<string, string>;
}

/** A payload that the route's `input` mapping cannot be rendered with (e.g. a missing field). */
export class WebhookInputError extends Error {
  override name = "WebhookInputError";
  constructor(readonly path: string, message: string, options?: ErrorOptions) {
    super(`Webhook '${path}': cannot map the payload to the workflow input: ${message}`, options);
  }
}

export class WebhookTable {
  private constructor(private readonly byPath: Map<string, WebhookRoute>) {}

  /**
   * Builds the table of a loaded project. `processEnv` takes part in `.env` as in the engine (env maps over
   * the process environment over the env file).
   */
  static fromProject(project: Project, processEnv: Record<string, string>): WebhookTable {
    const byPath = new Map<string, WebhookRoute>();
    for (const workflow of project.workflows.values()) {
      for (const trigger of workflow.config.triggers ?? []) {
        if (trigger.type !== "webhook") continue;
        const { url, secret, input } = trigger.config;
        if (byPath.has(url)) {
          throw new Error(
            `Webhook url '${url}' is declared twice (workflows '${byPath.get(url)!.workflowId}' ` +
              `and '${workflow.id}'); the project loader should have refused it`,
          );
        }
        const env = triggerEnv(project, workflow, processEnv);
        byPath.set(url, { path: url, workflowId: workflow.id, input, env, ...renderSecret(secret, env) });
      }
    }
    return new WebhookTable(byPath);
  }

  /** The route of `path` (with its leading `/`), if one is declared. */
  find(path: string): WebhookRoute | undefined {
    return this.byPath.get(path);
  }

  routes(): WebhookRoute[] {
    return [...this.byPath.values()];
  }

  /** The workflow input for a payload: the rendered mapping, or the payload itself without one. */
  static mapInput(route: WebhookRoute, payload: unknown): unknown {
    if (!route.input) return payload;
    try {
      return renderValue(route.input, { payload, env: route.env });
    } catch (e) {
      if (e instanceof TemplateError) throw new WebhookInputError(route.path, e.message, { cause: e });
      throw e;
    }
  }
}

function renderSecret(
  secret: string | undefined,
  env: Record<string, string>,
): Pick<WebhookRoute, "secret" | "secretProblem"> {
  if (secret === undefined) return {};
  try {
    const rendered = renderValue(secret, { env });
    if (typeof rendered !== "string" || rendered.length === 0) {
      return { secretProblem: "the secret renders to an empty or non-string value" };
    }
    return { secret: rendered };
  } catch (e) {
    return { secretProblem: `the secret cannot be rendered: ${(e as Error).message}` };
  }
}
