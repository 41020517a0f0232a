/** Pieces every page uses: the `ui` template tag (htm over preact; not named `html`, which deno fmt would reformat), the JSON view, status badges, times and error messages. */
import { h } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";

export const ui = htm.bind(h);

/**
 * For reads the page can do without (a filter's choices, a sub-workflow list): the failure goes to the
 * browser console with what was being read, and the page shows what it has.
 */
export function warn(what) {
  return (e) => {
    if (e?.name !== "AbortError") console.warn(`Compozy console: cannot read ${what}: ${e?.message ?? e}`);
  };
}

/** An agent's model in one line: `provider/model`, or the project model it names (`$model`). */
export function modelName(agent) {
  const c = agent?.config ?? {};
  const own = c.provider ? `${c.provider}/${c.model}` : "";
  return c.$model ? `model '${c.$model}'${own ? ` (${own})` : ""}` : own || "—";
}

export function navigate(hash) {
  location.hash = hash;
}

/** A collapsible view of a JSON value that keeps its types: strings quoted, numbers, booleans and null apart. */
export function JsonView({ value, open = true, label }) {
  return ui`<div class="json">${label ? ui`<span class="json-label">${label}</span>` : null}<${JsonNode}
    value=${value}
    depth=${0}
    open=${open}
  /></div>`;
}

/**
 * A value as JSON text with its bidirectional controls escaped (`\u202e`): the text is still JSON for the same
 * value, and a control cannot reorder the text it holds, which isolation alone leaves reversed.
 */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
export const jsonText = (value, indent) =>
  JSON.stringify(value, null, indent).replace(
    BIDI_CONTROLS,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );

/**
 * A list or object with more entries than this starts folded: a collection of 2,000 items drawn one per line
 * put the timeline thousands of lines below the header (outside review rev35).
 */
const MAX_OPEN_ENTRIES = 100;

function JsonNode({ value, depth, open }) {
  const size = value !== null && typeof value === "object" ? Object.keys(value).length : 0;
  const [expanded, setExpanded] = useState(open && depth < 3 && size <= MAX_OPEN_ENTRIES);
  if (value === undefined) return ui`<span class="j-null">undefined</span>`;
  if (value === null) return ui`<span class="j-null">null</span>`;
  if (typeof value === "string") return ui`<span class="j-str">${jsonText(value)}</span>`;
  if (typeof value === "number") return ui`<span class="j-num">${String(value)}</span>`;
  if (typeof value === "boolean") return ui`<span class="j-bool">${String(value)}</span>`;
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  const [start, end] = isArray ? ["[", "]"] : ["{", "}"];
  if (entries.length === 0) return ui`<span>${start}${end}</span>`;
  const count = entries.length;
  const summary = isArray
    ? `${count} item${count === 1 ? "" : "s"}`
    : `${count} key${count === 1 ? "" : "s"}`;
  return ui`<span>
    <button class="j-toggle" aria-expanded=${expanded} onClick=${() => setExpanded(!expanded)}>
      ${expanded ? "▾" : "▸"} ${start}${expanded ? "" : ` ${summary} ${end}`}
    </button>
    ${
    expanded
      ? ui`<div class="j-children">${
        entries.map(([k, v]) =>
          ui`<div>
            ${isArray ? null : ui`<span class="j-key">${jsonText(k)}</span>: `}<${JsonNode}
              value=${v}
              depth=${depth + 1}
              open=${open}
            />
          </div>`
        )
      }</div>${end}`
      : null
  }
  </span>`;
}

export function Status({ status }) {
  return ui`<span class=${`status s-${String(status).toLowerCase()}`}>${status}</span>`;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} m`;
}

export function durationOf(started, ended, now = Date.now()) {
  if (!started) return null;
  return (ended ? Date.parse(ended) : now) - Date.parse(started);
}

/** A clear sentence for a failed call: what the server said, and what it means here. */
export function ErrorBox({ error, context }) {
  if (!error) return null;
  const status = error.status ? ` (${error.status} ${error.code})` : "";
  return ui`
    <div class="error-box" role="alert">
      <strong>${context ?? "Something went wrong"}</strong>
      <div><bdi>${error.message}</bdi>${status}</div>
    </div>
  `;
}

/** Re-renders every `ms` while mounted (live durations). */
export function useTick(ms, active = true) {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [ms, active]);
}
