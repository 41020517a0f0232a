/**
 * `POST /api/webhooks/{path}`: the webhook triggers declared in workflows. Order of checks: the route must
 * exist (404), the body must fit (413), the signature must match the raw bytes (401), then the body must be
 * JSON (400) and map to an input (422). Nothing unsigned or unparsable reaches the engine.
 *
 * @module
 */
import { z } from "zod";
import { WebhookInputError, WebhookTable } from "../../engine/triggers/webhook_table.ts";
import { ApiError } from "../api_error.ts";
import { TemplateError } from "../../pkg/tplengine/mod.ts";
import { signatureMatches } from "../constant_time.ts";
import { IDEMPOTENCY_HEADER, scopedIdempotencyKey } from "../idempotency.ts";
import { parseJsonBody } from "../request_body.ts";
import { route, type RouteSpec } from "../route_spec.ts";
import { ExecIdResponse } from "../schemas.ts";
import { startExecution } from "../start_execution.ts";
import type { RouteContext } from "./context.ts";

export const SIGNATURE_HEADER = "X-Compozy-Signature";

export function webhookRoutes(ctx: RouteContext): RouteSpec[] {
  const calls = ctx.metrics.counter("compozy_webhook_requests_total", "Webhook calls by route and outcome");
  return [
    route({
      method: "post",
      path: "/api/webhooks/{path}",
      ignoresQuery: true,
      bus: true,
      honoPath: "/api/webhooks/:path{.+}",
      operationId: "callWebhook",
      summary: "Start the workflow whose webhook trigger declares this path",
      description: `With a \`secret\`, the call must carry \`${SIGNATURE_HEADER}: sha256=<hex>\`, the ` +
        "HMAC-SHA256 of the raw body. The JSON body is `.payload` of the trigger's `input` mapping (or the " +
        "input itself without one).",
      tag: "webhooks",
      auth: false,
      params: { path: "The trigger's `url` without its leading slash (may contain slashes)" },
      headers: [
        {
          name: SIGNATURE_HEADER,
          description: "sha256=<hex HMAC of the raw body> when the trigger has a secret",
        },
        { name: IDEMPOTENCY_HEADER, description: "Deduplicates redelivered calls for 24 h" },
      ],
      body: { schema: z.unknown(), description: "Any JSON document", raw: true },
      responses: {
        202: { description: "Accepted", schema: ExecIdResponse },
        200: { description: "Repeated idempotency key: the first execution's id", schema: ExecIdResponse },
        400: { description: "Malformed JSON or wrong content type" },
        401: { description: "Missing or bad signature" },
        404: { description: "No webhook trigger has this path" },
        413: { description: "Body too large" },
        422: { description: "The payload does not map to a valid input" },
        503: { description: "NATS or the engine is unavailable" },
      },
      handler: async (c, { raw }) => {
        const path = "/" + c.req.param("path");
        const hook = ctx.webhooks.find(path);
        if (!hook) {
          calls.inc({ path: "unknown", outcome: "not_found" });
          throw new ApiError(
            404,
            "webhook_not_found",
            `No webhook trigger has the path '${path.slice(0, 200)}'`,
          );
        }
        if (hook.secretProblem) {
          calls.inc({ path, outcome: "misconfigured" });
          throw new ApiError(
            500,
            "webhook_misconfigured",
            `Webhook '${path}' cannot check signatures: ${hook.secretProblem}`,
          );
        }
        if (hook.secret && !signatureMatches(hook.secret, raw, c.req.header(SIGNATURE_HEADER))) {
          calls.inc({ path, outcome: "bad_signature" });
          throw new ApiError(401, "invalid_signature", `Missing or invalid ${SIGNATURE_HEADER} header`);
        }
        const payload = parseJsonBody(c, raw) ?? {};
        let input: unknown;
        try {
          input = WebhookTable.mapInput(hook, payload);
        } catch (e) {
          if (!(e instanceof WebhookInputError)) throw e;
          calls.inc({ path, outcome: "bad_payload" });
          throw new ApiError(422, "input_mapping_failed", e.message, [mappingFailure(e)]);
        }
        const response = await startExecution(c, ctx, hook.workflowId, input, {
          idempotencyKey: scopedIdempotencyKey(c, `webhook:${path}`),
          source: "webhook",
        });
        calls.inc({ path, outcome: "accepted" });
        return response;
      },
    }),
  ];
}

/**
 * The detail of a mapping that cannot read the payload, in the shape of every other 4xx: `path` is a JSON
 * pointer to the input field whose template failed (`/name`), `message` says what was missing; the
 * payload's path (`.payload.user.name`) is `payload_path`. The webhook's own path is in the message.
 */
function mappingFailure(error: WebhookInputError): Record<string, string> {
  const cause = error.cause instanceof TemplateError ? error.cause : undefined;
  const field = "/" + (cause?.valuePath ?? []).map(String).join("/");
  return {
    path: field,
    message: cause?.message ?? error.message,
    ...(cause?.path ? { payload_path: `.${cause.path}` } : {}),
  };
}
