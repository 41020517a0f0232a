/** Builders shared by the agent tests: a call aimed at a mock server, and a recording fake sandbox. */

import type { AgentCall, ModelSpec } from "../../pkg/runtime/agent/mod.ts";
import type { MockLlmServer } from "../support/mock_llm/mod.ts";

/** What the fake sandbox was asked to run, in order. */
export interface ToolInvocation {
  toolId: string;
  input: unknown;
}

/** A `callTool` that records each call and answers from `handlers` (a missing handler throws). */
export function fakeSandbox(handlers: Record<string, (input: unknown) => unknown> = {}) {
  const calls: ToolInvocation[] = [];
  const callTool = (toolId: string, input: unknown): Promise<unknown> => {
    calls.push({ toolId, input });
    const handler = handlers[toolId];
    if (!handler) return Promise.reject(new Error(`no fake for tool ${toolId}`));
    try {
      return Promise.resolve(handler(input));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return { calls, callTool };
}

/** An OpenAI-protocol model on `mock` (Chat Completions through `@ai-sdk/openai`). */
export function openAIModel(mock: MockLlmServer, overrides: Partial<ModelSpec> = {}): ModelSpec {
  return {
    provider: "openai",
    model: "gpt-4o-mini",
    api_key: "test-key",
    base_url: mock.baseUrl,
    ...overrides,
  };
}

/** A call with no tools and no output schema unless `overrides` says otherwise. */
export function agentCall(model: ModelSpec, overrides: Partial<AgentCall> = {}): AgentCall {
  return {
    agentId: "forecaster",
    actionId: "advise",
    model,
    instructions: "You are a concise weather assistant.",
    prompt: "Advise about clothes in Lisbon",
    tools: [],
    maxSteps: 10,
    callTool: fakeSandbox().callTool,
    ...overrides,
  };
}

export const ADVICE_SCHEMA = {
  type: "object",
  properties: { advice: { type: "string" }, layers: { type: "integer", minimum: 0 } },
  required: ["advice"],
};

export const WEATHER_TOOL = {
  id: "weather_tool",
  description: "Current weather for a city",
  inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
