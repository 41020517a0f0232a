/** Tools (permissions, schemas, timeout) and agents (model, actions, tools), read-only, with their file. */
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { ErrorBox, JsonView, modelName, ui } from "./common.js";

function where(def) {
  return `${def.file ?? "?"}${def.line ? `:${def.line}` : ""}${
    def.workflow_id ? ` · workflow ${def.workflow_id}` : " · project"
  }`;
}

export function DefinitionsPage() {
  const [tools, setTools] = useState(null);
  const [agents, setAgents] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api("/api/tools").then((r) => setTools(r.items), setError);
    api("/api/agents").then((r) => setAgents(r.items), setError);
  }, []);
  if (error) return ui`<${ErrorBox} error=${error} context="Cannot read the definitions" />`;
  if (!tools || !agents) return ui`<p class="muted">Loading…</p>`;
  return ui`<section>
    <h1>Definitions</h1>
    <h2>Tools (${tools.length})</h2>
    ${tools.length === 0 ? ui`<p class="muted">No tools.</p>` : null}
    <div class="cards">${
    tools.map((t) =>
      ui`<article class="card" data-tool=${t.id}>
        <h3 class="mono">${t.id}</h3>
        ${t.description ? ui`<p>${t.description}</p>` : null}
        <p class="muted small">${where(t)}${t.execute_path ? ` · code ${t.execute_path}` : ""}</p>
        <dl class="facts">
          <div><dt>Timeout</dt><dd>${t.timeout ?? "default"}</dd></div>
        </dl>
        <details><summary>Permissions</summary><${JsonView} value=${t.permissions ?? null} /></details>
        <details><summary>Input schema</summary><${JsonView} value=${
        t.input ?? t.input_schema ?? null
      } /></details>
        <details><summary>Output schema</summary><${JsonView} value=${
        t.output ?? t.output_schema ?? null
      } /></details>
        <details><summary>Everything</summary><${JsonView} value=${t} open=${false} /></details>
      </article>`
    )
  }</div>
    <h2>Agents (${agents.length})</h2>
    ${agents.length === 0 ? ui`<p class="muted">No agents.</p>` : null}
    <div class="cards">${
    agents.map((a) =>
      ui`
        <article class="card" data-agent=${a.id}>
          <h3 class="mono">${a.id}</h3>
          <p class="muted small">${where(a)}</p>
          <p>Model: <span class="mono">${modelName(a)}</span></p>
          <details>
            <summary>Model settings</summary>
            <${JsonView} value=${a.config ?? null} />
          </details>
          <details>
            <summary>Instructions</summary>
            <p>${a.instructions}</p>
          </details>
          <details>
            <summary>Actions (${(a.actions ?? []).length})</summary>
            <${JsonView} value=${a.actions ?? []} />
          </details>
          <details>
            <summary>Tools (${(a.tools ?? []).length})</summary>
            <${JsonView} value=${a.tools ?? []} />
          </details>
          <details>
            <summary>Everything</summary>
            <${JsonView} value=${a} open=${false} />
          </details>
        </article>
      `
    )
  }</div>
  </section>`;
}
