/**
 * An execution's actions: signal (payload checked as JSON before it is sent), pause, resume, cancel with a
 * reason, and re-run with the same or an edited input. An ended execution says so instead of offering
 * controls that would be refused; any refusal from the server is shown as it came.
 */
import { useRef, useState } from "preact/hooks";
import { api, TERMINAL } from "./api.js";
import { ErrorBox, jsonText, navigate, ui } from "./common.js";
import { invalidIdText, isDefinitionId } from "./ids.js";

/**
 * Runs `request` unless one started here is still in flight: a double click on Send or Start the re-run sent
 * the request twice (two signals, two re-runs; outside review rev35). The ref stops a second click that comes
 * before the re-render that disables the button; `busy` disables it.
 */
function useOneAtATime() {
  const inFlight = useRef(false);
  const [busy, setBusy] = useState(false);
  const once = async (request) => {
    if (inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    try {
      await request();
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  };
  return [busy, once];
}

export function Actions({ state, onDone }) {
  const [open, setOpen] = useState(null);
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [busy, once] = useOneAtATime();
  const ended = TERMINAL.has(state.status);
  const id = encodeURIComponent(state.exec_id);

  const run = (path, options, done) =>
    once(async () => {
      setError(null);
      setNote(null);
      try {
        await api(`/api/executions/${id}${path}`, { method: "POST", ...options });
        setOpen(null);
        setNote(done);
        onDone();
      } catch (e) {
        setError(e);
      }
    });

  const toggle = (name) => {
    setError(null);
    setNote(null);
    setOpen(open === name ? null : name);
  };

  return ui`<section class="actions" aria-label="Actions">
    <div class="buttons">
      <button id="act-signal" disabled=${ended} onClick=${() => toggle("signal")}>Send a signal…</button>
      <button id="act-pause" disabled=${busy || ended || state.status === "PAUSED"} onClick=${() =>
    run("/pause", {}, "Pause requested.")}>Pause</button>
      <button id="act-resume" disabled=${busy || state.status !== "PAUSED"} onClick=${() =>
    run("/resume", {}, "Resume requested.")}>Resume</button>
      <button id="act-cancel" class="danger" disabled=${ended} onClick=${() =>
    toggle("cancel")}>Cancel…</button>
      <button id="act-rerun" onClick=${() => toggle("rerun")}>Re-run…</button>
    </div>
    ${
    ended
      ? ui`
        <p class="muted small"
          id="ended-note">This execution has ended (${state.status}): it can no longer be signaled, paused, resumed or canceled. Re-run it to start again.</p>
      `
      : null
  }
    ${note ? ui`<p class="note" role="status">${note}</p>` : null}
    <${ErrorBox} error=${error} context="The server refused the action" />
    ${open === "signal" ? ui`<${SignalForm} state=${state} run=${run} busy=${busy} />` : null}
    ${open === "cancel" ? ui`<${CancelForm} run=${run} busy=${busy} />` : null}
    ${open === "rerun" ? ui`<${RerunForm} state=${state} setError=${setError} />` : null}
  </section>`;
}

/** Parses the editor's text; an empty editor is a null payload, as with the API. */
function parsePayload(text) {
  if (!text.trim()) return { value: null };
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { problem: `The payload is not valid JSON: ${e.message}` };
  }
}

function SignalForm({ state, run, busy }) {
  const waiting = state.tasks.find((t) => t.status === "WAITING" && t.waiting_for)?.waiting_for ?? "";
  const [signalId, setSignalId] = useState(waiting);
  const [text, setText] = useState("{}");
  const parsed = parsePayload(text);
  const badId = signalId !== "" && !isDefinitionId(signalId);
  const submit = (ev) => {
    ev.preventDefault();
    if (parsed.problem || badId) return;
    run(
      `/signals/${encodeURIComponent(signalId)}`,
      { rawBody: JSON.stringify(parsed.value) },
      `Signal '${signalId}' sent.`,
    );
  };
  return ui`<form class="panel" id="signal-form" onSubmit=${submit}>
    <label>Signal id <input name="signal_id" required value=${signalId} onInput=${(e) =>
    setSignalId(e.target.value)} /></label>
    ${
    badId
      ? ui`<p class="field-error" id="signal-id-error" role="alert">${invalidIdText("signal", signalId)}</p>`
      : null
  }
    <label>Payload (JSON)
      <textarea name="payload" rows="6" class="mono" aria-invalid=${!!parsed
    .problem} value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
    </label>
    ${
    parsed.problem ? ui`<p class="field-error" id="payload-error" role="alert">${parsed.problem}</p>` : null
  }
    <button type="submit" disabled=${busy || !!parsed.problem || !signalId || badId}>Send</button>
  </form>`;
}

function CancelForm({ run, busy }) {
  const [reason, setReason] = useState("");
  return ui`
    <form class="panel" id="cancel-form" onSubmit=${(ev) => {
    ev.preventDefault();
    run("/cancel", { body: reason ? { reason } : {} }, "Cancel requested.");
  }}>
      <label>Reason (optional) <input name="reason" value=${reason} onInput=${(e) =>
    setReason(e.target.value)} /></label>
      <button type="submit" class="danger" disabled=${busy}>Cancel the execution</button>
    </form>
  `;
}

function RerunForm({ state, setError }) {
  const [text, setText] = useState(jsonText(state.input ?? {}, 2));
  const [fields, setFields] = useState([]);
  const [busy, once] = useOneAtATime();
  const parsed = parsePayload(text);
  const submit = (ev) => {
    ev.preventDefault();
    if (parsed.problem) return;
    once(async () => {
      try {
        const { exec_id } = await api(`/api/executions/${encodeURIComponent(state.exec_id)}/rerun`, {
          method: "POST",
          body: { input: parsed.value },
        });
        navigate(`#/executions/${exec_id}`);
      } catch (e) {
        setFields(e.status === 422 ? e.details : []);
        setError(e);
      }
    });
  };
  return ui`<form class="panel" id="rerun-form" onSubmit=${submit}>
    <label>Input (JSON; the first run's by default)
      <textarea name="input" rows="8" class="mono" value=${text} onInput=${(e) =>
    setText(e.target.value)}></textarea>
    </label>
    ${
    parsed.problem
      ? ui`<p class="field-error" role="alert">${parsed.problem.replace("payload", "input")}</p>`
      : null
  }
    ${
    fields.length
      ? ui`<ul class="field-error">${
        fields.map((f) => ui`<li><code>${f.path || "/"}</code> <bdi>${f.message}</bdi></li>`)
      }</ul>`
      : null
  }
    <button type="submit" disabled=${busy || !!parsed.problem}>Start the re-run</button>
  </form>`;
}
