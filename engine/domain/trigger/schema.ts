/**
 * Shapes of workflow triggers: webhooks served by the API and cron schedules.
 *
 * @module
 */

import { z } from "zod";

/** Webhook paths: slash-separated segments that are safe in a URL without escaping. */
export const WEBHOOK_URL_PATTERN = "^(/[A-Za-z0-9_-]+)+$";

const inputMapping = z.record(z.string(), z.unknown()).describe(
  "Mapping to the workflow input; strings may be templates",
);

export const WebhookTriggerSchema = z.strictObject({
  type: z.literal("webhook"),
  config: z.strictObject({
    url: z.string().regex(new RegExp(WEBHOOK_URL_PATTERN)).describe(
      "Path under /api/webhooks, unique in the project",
    ).meta({ examples: ["/weather"] }),
    secret: z.string().describe(
      "HMAC-SHA256 key; requests must carry X-Compozy-Signature: sha256=<hex of the raw body>",
    ).meta({ examples: ["{{ .env.WEBHOOK_SECRET }}"] }).optional(),
    input: inputMapping.meta({ examples: [{ city: "{{ .payload.location.city }}" }] }).optional(),
  }),
}).describe("Runs the workflow on POST /api/webhooks/<url>").meta({ id: "trigger_webhook" });

export const ScheduleTriggerSchema = z.strictObject({
  type: z.literal("schedule"),
  config: z.strictObject({
    cron: z.string().min(1).describe("Cron expression (5 or 6 fields)").meta({ examples: ["0 7 * * *"] }),
    input: inputMapping.meta({ examples: [{ city: "Lisbon" }] }).optional(),
  }),
}).describe("Runs the workflow on a cron schedule").meta({ id: "trigger_schedule" });

export const TriggerSchema = z.discriminatedUnion("type", [WebhookTriggerSchema, ScheduleTriggerSchema])
  .describe("A trigger, chosen by `type`").meta({ id: "trigger" });

export type WebhookTrigger = z.infer<typeof WebhookTriggerSchema>;
export type ScheduleTrigger = z.infer<typeof ScheduleTriggerSchema>;
export type TriggerConfig = z.infer<typeof TriggerSchema>;
