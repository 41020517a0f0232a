/**
 * `POST /api/admin/deployments`: loads a bundle made by `compozy build` and switches to it without downtime
 * (requests keep being served by the old definitions until the new ones are loaded and checked). Code
 * deployment is powerful, so the route needs the API key; a server without one refuses every deployment,
 * `compozy dev` included: on loopback, anything local (a tool with `net`, a rebinding web page) could
 * otherwise deploy (red team 4 F1). A bundle's MCP `command:` servers (unsandboxed, the runtime's rights)
 * are refused unless the operator allows them (Stack.deploy, COMPOZY_ALLOW_DEPLOYED_MCP_COMMANDS).
 *
 * @module
 */
import { ConfigError, formatDiagnostic } from "../../engine/domain/diagnostics.ts";
import { ApiError } from "../api_error.ts";
import { route, type RouteSpec } from "../route_spec.ts";
import { BundleBody, DeploymentResponse } from "../schemas.ts";
import type { RouteContext } from "./context.ts";

/** Bundles carry every project file and bundled tool; they may be much larger than API bodies. */
export const DEPLOY_BODY_LIMIT_BYTES = 64 * 1024 * 1024;

export function adminRoutes(ctx: RouteContext): RouteSpec[] {
  return [
    route({
      method: "post",
      path: "/api/admin/deployments",
      operationId: "deploy",
      summary: "Deploy a project bundle (from `compozy build`) without downtime",
      tag: "admin",
      body: {
        schema: BundleBody,
        description: "The bundle file",
        required: true,
        limitBytes: DEPLOY_BODY_LIMIT_BYTES,
      },
      responses: {
        200: { description: "The bundle is loaded and serving", schema: DeploymentResponse },
        400: { description: "Not a bundle" },
        403: { description: "Deployments need an API key on this server" },
        422: { description: "The bundled project does not validate; details list the problems" },
        501: { description: "This process cannot load deployments (e.g. `--role api` only)" },
      },
      handler: async (c, { body }) => {
        if (!ctx.deploy) {
          throw new ApiError(501, "deploy_unavailable", "This server does not accept deployments");
        }
        if (!ctx.apiKeyConfigured) {
          throw new ApiError(
            403,
            "deploy_requires_api_key",
            "Deployments are refused on a server without an API key; start it with COMPOZY_API_KEY",
          );
        }
        try {
          return c.json(await ctx.deploy(body));
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          const errors = e.diagnostics.filter((d) => d.severity === "error");
          throw new ApiError(
            422,
            "invalid_project",
            `The bundle's project has ${errors.length} error(s)`,
            errors.map((d) => formatDiagnostic(d)),
          );
        }
      },
    }),
  ];
}
