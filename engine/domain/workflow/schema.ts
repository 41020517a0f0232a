/**
 * Shape of a workflow file.
 *
 * @module
 */

import { z } from "zod";
import { AgentSchema, budgetFields } from "../agent/schema.ts";
import { durationField, envField, idField, jsonSchemaField, templatedValue } from "../config_fields.ts";
import { TaskSchema } from "../task/schema.ts";
import { ToolSchema } from "../tool/schema.ts";
import { TriggerSchema } from "../trigger/schema.ts";

export const WorkflowSchema = z.strictObject({
  id: idField("Workflow id, unique in the project"),
  version: z.string().describe("Version of this workflow").meta({ examples: ["0.1.0"] }).optional(),
  description: z.string().describe("What the workflow does").optional(),
  config: z.strictObject({
    input: jsonSchemaField("the workflow's input, checked at trigger time (422 on failure)").optional(),
    timeout: durationField("Time limit of a whole execution").optional(),
    budget: z.strictObject(budgetFields).describe(
      "Spending limits of all the agent tasks of one execution together; `max_cost` limits priced models",
    ).meta({ id: "workflow_budget", examples: [{ max_total_tokens: 100000 }] }).optional(),
  }).describe("Execution settings").optional(),
  triggers: z.array(TriggerSchema).describe("What starts the workflow besides the API").optional(),
  env: envField().optional(),
  tools: z.array(ToolSchema).describe("Tools declared in this workflow").optional(),
  agents: z.array(AgentSchema).describe("Agents declared in this workflow").optional(),
  tasks: z.array(TaskSchema).min(1).describe("Tasks; the first one starts the workflow"),
  outputs: z.record(z.string(), templatedValue()).describe(
    "The workflow's result; default: the output of the task that ended it",
  ).meta({ examples: [{ advice: "{{ .tasks.advise.output.advice }}" }] }).optional(),
}).describe("A Compozy workflow").meta({ id: "workflow" });

export type WorkflowConfig = z.infer<typeof WorkflowSchema>;
