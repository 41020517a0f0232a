/**
 * Workflows with their triggers (webhook URL, schedule and next tick), and a start form generated from a
 * workflow's input JSON Schema: a field per property (enums as choices, numbers, booleans; objects and
 * arrays as JSON), required ones marked; a 422's field errors are shown at their fields.
 */
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { ErrorBox, formatTime, navigate, ui } from "./common.js";
import { InvalidId, isDefinitionId } from "./ids.js";

export function WorkflowsPage() {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api("/api/workflows").then((r) => setItems(r.items), setError);
  }, []);
  if (error) return ui`<${ErrorBox} error=${error} context="Cannot list workflows" />`;
  if (!items) return ui`<p class="muted">Loading…</p>`;
  return ui`
    <section>
      <h1>Workflows</h1>
      <div class="cards">${
    items.map((w) =>
      ui`<article class="card" data-workflow=${w.id}>
        <h2><a href=${`#/workflows/${encodeURIComponent(w.id)}`}>${w.id}</a> ${
        w.version ? ui`<span class="muted small">v${w.version}</span>` : null
      }</h2>
        ${w.description ? ui`<p>${w.description}</p>` : null}
        <p class="muted small">${w.file} · ${w.tasks} task(s)</p>
        <${Triggers} triggers=${w.triggers} />
        <p><a class="button" href=${`#/workflows/${encodeURIComponent(w.id)}`}>Start…</a>
        <a href=${`#/executions?workflow=${encodeURIComponent(w.id)}`}>Executions</a></p>
      </article>`
    )
  }</div>
    </section>
  `;
}

function Triggers({ triggers }) {
  if (!triggers?.length) {
    return ui`<p class="muted small">Started from the API, the CLI or this console.</p>`;
  }
  return ui`<ul class="triggers small">${
    triggers.map((t) => {
      if (t.type === "webhook") {
        const url = `${location.origin}/api/webhooks${t.config?.url ?? ""}`;
        return ui`<li>webhook <code>${url}</code>${t.config?.secret ? " (signed)" : ""}</li>`;
      }
      if (t.type === "schedule") {
        return ui`<li>schedule <code>${t.config?.cron}</code> · next ${
          t.next_run_at ? formatTime(t.next_run_at) : t.next_run_error ?? "—"
        }</li>`;
      }
      return ui`<li>${t.type}</li>`;
    })
  }</ul>`;
}

/**
 * An enum choice as its `<option>`'s value: a string as it is, anything else as JSON. The choice sent is the
 * enum's own value (a number, a boolean, null), not the option's text: `enum: [1, 2, 3]` without a `type`
 * sent "2" and the server refused the value picked from its own list.
 */
function choiceValue(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The initial form values: defaults from the schema, else empty. */
export function initialValues(schema) {
  const values = {};
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    if (prop.default !== undefined) {
      values[name] = typeof prop.default === "object" ? JSON.stringify(prop.default) : prop.default;
    } else values[name] = prop.type === "boolean" ? false : "";
  }
  return values;
}

/** Form values to the input object; a value the schema's type cannot take is a field error here. */
export function toInput(schema, values) {
  const input = {};
  const errors = {};
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    const raw = values[name];
    const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
    if (Array.isArray(prop.enum)) {
      if (raw === "" || raw === undefined) continue;
      const choice = prop.enum.find((v) => choiceValue(v) === choiceValue(raw));
      input[name] = choice === undefined ? raw : choice;
      continue;
    }
    if (type === "boolean") {
      input[name] = !!raw;
      continue;
    }
    if (raw === "" || raw === undefined) continue;
    if (type === "number" || type === "integer") {
      const n = Number(raw);
      if (Number.isNaN(n)) errors[`/${name}`] = "must be a number";
      else input[name] = n;
    } else if (type === "object" || type === "array") {
      try {
        input[name] = JSON.parse(raw);
      } catch (e) {
        errors[`/${name}`] = `is not valid JSON: ${e.message}`;
      }
    } else input[name] = raw;
  }
  return { input, errors };
}

export function StartPage({ workflowId }) {
  if (isDefinitionId(workflowId)) return ui`<${StartForm} workflowId=${workflowId} />`;
  return ui`<${InvalidId} kind="workflow" id=${workflowId} />`;
}

function StartForm({ workflowId }) {
  const [workflow, setWorkflow] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [values, setValues] = useState({});
  const [fieldErrors, setFieldErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api(`/api/workflows/${encodeURIComponent(workflowId)}`).then((w) => {
      setWorkflow(w);
      setValues(initialValues(w.input_schema));
    }, setLoadError);
  }, [workflowId]);
  if (loadError) {
    return ui`
      <${ErrorBox}
        error=${loadError}
        context=${loadError.status === 404 ? "There is no workflow with this id" : "Cannot load the workflow"}
      />
    `;
  }
  if (!workflow) return ui`<p class="muted">Loading…</p>`;
  const schema = workflow.input_schema;
  const required = new Set(schema?.required ?? []);
  const props = Object.entries(schema?.properties ?? {});

  const submit = async (ev) => {
    ev.preventDefault();
    setError(null);
    const { input, errors } = toInput(schema, values);
    setFieldErrors(errors);
    if (Object.keys(errors).length) return;
    setBusy(true);
    try {
      const { exec_id } = await api(`/api/workflows/${encodeURIComponent(workflowId)}/executions`, {
        method: "POST",
        body: { input },
      });
      navigate(`#/executions/${exec_id}`);
    } catch (e) {
      // A 422 lists the failing fields by JSON pointer: show each at its field, the rest above the form.
      const byField = {};
      for (const d of e.details ?? []) if (d.path !== undefined) byField[d.path || "/"] = d.message;
      setFieldErrors(byField);
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const set = (name, value) => setValues({ ...values, [name]: value });
  const unplaced = Object.entries(fieldErrors).filter(([path]) =>
    !props.some(([name]) => path === `/${name}`)
  );

  return ui`<section>
    <h1>Start <span class="mono">${workflow.id}</span></h1>
    ${workflow.description ? ui`<p>${workflow.description}</p>` : null}
    <form class="start-form" id="start-form" onSubmit=${submit} novalidate>
      ${props.length === 0 ? ui`<p class="muted">This workflow takes no declared input.</p>` : null}
      ${
    props.map(([name, prop]) => {
      const problem = fieldErrors[`/${name}`];
      const id = `field-${name}`;
      return ui`<div class=${`field ${problem ? "invalid" : ""}`} data-field=${name}>
          <label for=${id}><bdi>${name}</bdi>${
        required.has(name) ? ui`<span class="req" title="required"> *</span>` : null
      } <span class="muted small">${[].concat(prop.type ?? "any").join(" | ")}</span></label>
          <${FieldInput} id=${id} prop=${prop} value=${values[name]} required=${
        required.has(name)
      } onChange=${(v) => set(name, v)} />
          ${prop.description ? ui`<p class="muted small">${prop.description}</p>` : null}
          ${
        problem
          ? ui`<p class="field-error" role="alert" id=${`${id}-error`}><bdi>${name}</bdi> ${problem}</p>`
          : null
      }
        </div>`;
    })
  }
      ${
    unplaced.length
      ? ui`<ul class="field-error">${
        unplaced.map(([path, m]) => ui`<li><code>${path}</code> ${m}</li>`)
      }</ul>`
      : null
  }
      <${ErrorBox} error=${error} context=${
    error?.status === 422 ? "The input does not fit the workflow's schema" : "The start was refused"
  } />
      <button type="submit" disabled=${busy}>${busy ? "Starting…" : "Start"}</button>
    </form>
  </section>`;
}

function FieldInput({ id, prop, value, required, onChange }) {
  const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
  if (Array.isArray(prop.enum)) {
    const selected = value === "" || value === undefined ? "" : choiceValue(value);
    return ui`<select id=${id} name=${id} required=${required} value=${selected} onChange=${(e) =>
      onChange(e.target.value)}>
      <option value="">—</option>
      ${prop.enum.map((v) => ui`<option value=${choiceValue(v)}>${choiceValue(v)}</option>`)}
    </select>`;
  }
  if (type === "boolean") {
    return ui`<input id=${id} name=${id} type="checkbox" checked=${!!value} onChange=${(e) =>
      onChange(e.target.checked)} />`;
  }
  if (type === "object" || type === "array") {
    return ui`
      <textarea id=${id} name=${id} class="mono" rows="4" placeholder=${
      type === "array" ? "[]" : "{}"
    } value=${value}
        onInput=${(e) => onChange(e.target.value)}></textarea>
    `;
  }
  const numeric = type === "number" || type === "integer";
  return ui`
    <input
      id=${id}
      name=${id}
      type=${numeric ? "number" : "text"}
      step=${type === "integer" ? "1" : "any"}
      required=${required}
      value=${value}
      onInput=${(e) => onChange(e.target.value)}
    />
  `;
}
