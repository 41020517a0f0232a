/**
 * Turns a {@link ModelSpec} into an AI SDK language model, one provider package per provider.
 *
 * OpenAI goes through `.chat()` (Chat Completions), not the SDK's default Responses API: Chat Completions
 * is the protocol every OpenAI-compatible server, proxy and our loopback test server speak, and an agent
 * here needs nothing the Responses API alone offers (its built-in tools and server-side state).
 *
 * Each provider's package is loaded when a model of it is first resolved, not when the runtime starts: a
 * project without agents evaluates none of them (nor the AI SDK they load), one with agents only those it
 * names. The imports are literal specifiers, so `deno compile` still bundles every provider.
 *
 * @module
 */

import type { JSONValue, LanguageModel } from "ai";
import type { ModelSpec, ProviderName } from "./agent_call.ts";
import { AgentFailure, configInvalid, errorMessage } from "./agent_failure.ts";
import { createMockModel, type MockScope } from "./mock_model.ts";
import { isPlaceholderKey } from "../../utils/placeholder_key.ts";

/** Provider options, keyed by provider, sent with every request (the shape of `generateText`'s `providerOptions`). */
export type ProviderOptions = Record<string, Record<string, JSONValue>>;

export interface ResolvedModel {
  model: LanguageModel;
  providerOptions: ProviderOptions;
}

/**
 * OpenAI-style providers default to strict JSON Schema for structured output, which rejects (HTTP 400) any
 * schema where some property is optional or `additionalProperties` is not `false` — most hand-written
 * schemas. Non-strict mode still sends the schema; Ajv is what enforces it (structured_output.ts).
 */
const NON_STRICT_SCHEMA = { strictJsonSchema: false };

type ModelBuilder = (spec: ModelSpec, scope: MockScope) => ResolvedModel;

/** Each provider's builder, its package loaded on call. */
const PROVIDERS: Record<ProviderName, () => Promise<ModelBuilder>> = {
  openai: async () => {
    const { createOpenAI } = await import("@ai-sdk/openai");
    return (spec) => ({
      model: createOpenAI({ apiKey: spec.api_key, baseURL: spec.base_url }).chat(spec.model),
      providerOptions: { openai: NON_STRICT_SCHEMA },
    });
  },
  "openai-compatible": async () => {
    const { createOpenAICompatible } = await import("@ai-sdk/openai-compatible");
    return (spec) => ({
      model: createOpenAICompatible({
        name: "openai-compatible",
        baseURL: spec.base_url!,
        apiKey: spec.api_key,
        // Send the output schema as `response_format: json_schema` (vLLM, llama.cpp, LM Studio and Ollama
        // honour it) rather than a bare `json_object` that says nothing about the shape.
        supportsStructuredOutputs: true,
      }).chatModel(spec.model),
      providerOptions: { openaiCompatible: NON_STRICT_SCHEMA },
    });
  },
  anthropic: async () => {
    const { createAnthropic } = await import("@ai-sdk/anthropic");
    return (spec) => ({
      model: createAnthropic({ apiKey: spec.api_key, baseURL: spec.base_url })(spec.model),
      providerOptions: {},
    });
  },
  google: async () => {
    const { createGoogle } = await import("@ai-sdk/google");
    return (spec) => ({
      model: createGoogle({ apiKey: spec.api_key, baseURL: spec.base_url })(spec.model),
      providerOptions: {},
    });
  },
  groq: async () => {
    const { createGroq } = await import("@ai-sdk/groq");
    return (spec) => ({
      model: createGroq({ apiKey: spec.api_key, baseURL: spec.base_url })(spec.model),
      providerOptions: { groq: NON_STRICT_SCHEMA },
    });
  },
  ollama: async () => {
    const { createOllama } = await import("ollama-ai-provider-v2");
    return (spec) => ({
      model: createOllama({
        baseURL: spec.base_url,
        // Ollama itself needs no key; one behind an authenticating proxy (or Ollama's cloud) takes a bearer token.
        headers: spec.api_key ? { Authorization: `Bearer ${spec.api_key}` } : undefined,
      })(spec.model),
      providerOptions: {},
    });
  },
  mock: () =>
    Promise.resolve((spec, scope) => ({
      model: createMockModel(spec.model, spec.mock, scope),
      providerOptions: {},
    })),
};

/**
 * Checks `spec`, loads its provider and builds its model. Throws `agent_config_invalid` naming the field at
 * fault. `scope` (the agent action) picks the script of a `mock` model; other providers ignore it.
 */
export async function resolveModel(
  spec: ModelSpec,
  scope: MockScope = { agentId: "agent" },
): Promise<ResolvedModel> {
  checkModelSpec(spec);
  const build = await loadProvider(spec.provider);
  try {
    return build(spec, scope);
  } catch (error) {
    if (error instanceof AgentFailure) throw error;
    throw configInvalid(`Cannot create the ${spec.provider} model '${spec.model}': ${errorMessage(error)}`, {
      field: "model",
    }, error);
  }
}

/** The builder of `provider`, its package loaded; a package that cannot load is `agent_config_invalid`. */
async function loadProvider(provider: ProviderName): Promise<ModelBuilder> {
  try {
    return await PROVIDERS[provider]();
  } catch (error) {
    throw configInvalid(
      `Cannot load the ${provider} provider: ${errorMessage(error)}`,
      { field: "provider" },
      error,
    );
  }
}

function checkModelSpec(spec: ModelSpec): void {
  if (!Object.hasOwn(PROVIDERS, spec.provider)) {
    throw configInvalid(
      `Cannot create a model as 'provider' must be one of ${Object.keys(PROVIDERS).join(", ")}: ` +
        `current value is ${JSON.stringify(spec.provider)}`,
      { field: "provider" },
    );
  }
  if (typeof spec.model !== "string" || spec.model.trim() === "") {
    throw configInvalid(`Cannot create a ${spec.provider} model as 'model' is empty`, { field: "model" });
  }
  if (spec.mock !== undefined && spec.provider !== "mock") {
    throw configInvalid(`Cannot create a ${spec.provider} model as 'mock' is only for provider mock`, {
      field: "mock",
    });
  }
  if (spec.provider === "openai-compatible" && !spec.base_url) {
    throw configInvalid("Cannot create an openai-compatible model as 'base_url' is missing", {
      field: "base_url",
    });
  }
  // `localhost:11434` parses as a URL with scheme `localhost:`; only http(s) reaches a model.
  if (spec.base_url !== undefined && !/^https?:$/.test(URL.parse(spec.base_url)?.protocol ?? "")) {
    throw configInvalid(
      `Cannot create a ${spec.provider} model as 'base_url' is not an http(s) URL: current value is ${
        JSON.stringify(spec.base_url)
      }`,
      { field: "base_url" },
    );
  }
  // A key still set to the placeholder of .env.example could only earn a 401 (or, offline, a DNS error that
  // says nothing about the key): say what is wrong instead, before any request.
  if (spec.provider !== "mock" && spec.api_key !== undefined && isPlaceholderKey(spec.api_key)) {
    throw configInvalid(
      `Cannot call the ${spec.provider} model '${spec.model}' as its 'api_key' is still a placeholder: set the ` +
        "real key (in the project's .env or the environment), or point the agent at a model with " +
        "provider: mock to run without one",
      { field: "api_key" },
    );
  }
  if (spec.timeout_ms !== undefined && !(Number.isFinite(spec.timeout_ms) && spec.timeout_ms > 0)) {
    throw configInvalid(
      `Cannot create a ${spec.provider} model as 'timeout_ms' must be a positive number: current value is ${spec.timeout_ms}`,
      { field: "timeout_ms" },
    );
  }
}
