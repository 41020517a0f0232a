/**
 * The console's shell: navigation, the hash router, keyboard shortcuts, and the API key prompt shown when the
 * server asks for a key (401) or refuses the one given (403).
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, apiKey, onAuthFailure, setApiKey } from "./api.js";
import { ui, warn } from "./common.js";
import { DefinitionsPage } from "./definitions.js";
import { ExecutionPage } from "./execution.js";
import { ExecutionsPage } from "./executions.js";
import { StartPage, WorkflowsPage } from "./workflows.js";

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/executions";
  const [path, search] = raw.split("?");
  return {
    parts: path.split("/").filter(Boolean).map(decodedPart),
    query: new URLSearchParams(search ?? ""),
  };
}

/**
 * A path part of the hash, decoded; one that is not valid percent-encoding (`%`, `%E0%A4%A`) is kept as it
 * is, so the page it names says the id is not valid: decodeURIComponent threw, and nothing rendered.
 */
function decodedPart(part) {
  try {
    return decodeURIComponent(part);
  } catch (e) {
    if (e instanceof URIError) return part;
    throw e;
  }
}

function Page({ route }) {
  const [section, id] = route.parts;
  if (section === "executions" && id) return ui`<${ExecutionPage} execId=${id} />`;
  if (section === "workflows" && id) return ui`<${StartPage} workflowId=${id} />`;
  if (section === "workflows") return ui`<${WorkflowsPage} />`;
  if (section === "definitions") return ui`<${DefinitionsPage} />`;
  return ui`<${ExecutionsPage} query=${route.query} />`;
}

/**
 * Why `key` cannot be sent as `Authorization: Bearer <key>`, or null: a header carries Latin-1 only, and the
 * server reads the key up to white space. Such a key was kept, and every fetch then threw before sending
 * ("Cannot reach the server", reconnecting forever) with no way back to this prompt (outside review rev35).
 */
function unsendableKey(key) {
  const bad = [...key].find((c) => !/[\x21-\x7e\xa1-\xff]/.test(c));
  if (bad === undefined) return null;
  const code = `U+${bad.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  return /\s/.test(bad)
    ? `The key holds white space (${code}), which no API key has.`
    : `The key holds ${JSON.stringify(bad)} (${code}), which cannot be sent in an HTTP header: ` +
      "was it pasted with typographic quotes or dashes?";
}

function KeyPrompt({ failure, onSaved }) {
  const [key, setKey] = useState("");
  const [problem, setProblem] = useState(null);
  const message = failure.status === 403
    ? "The API key was refused (403): it is wrong or no longer valid. Enter a valid key."
    : "This server requires an API key (401). Enter the key the server was started with (COMPOZY_API_KEY).";
  return ui`
    <section class="key-prompt">
      <h1>API key needed</h1>
      <p role="alert" id="auth-message">${message}</p>
      <form onSubmit=${(e) => {
    e.preventDefault();
    const refused = unsendableKey(key.trim());
    setProblem(refused);
    if (refused) return;
    setApiKey(key.trim());
    onSaved();
  }}>
        <label>API key <input id="api-key" type="password" autocomplete="off" value=${key} onInput=${(e) => {
    setKey(e.target.value);
    setProblem(null);
  }} autofocus /></label>
        <button type="submit">Use this key</button>
        ${problem ? ui`<p class="field-error" id="key-error" role="alert">${problem}</p>` : null}
      </form>
      <p
        class="muted small">The key is kept in this tab only (session storage) and sent as <code>Authorization: Bearer</code>.</p>
    </section>
  `;
}

function App() {
  const [route, setRoute] = useState(parseRoute());
  const [authFailure, setAuthFailure] = useState(null);
  const [version, setVersion] = useState(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const onHash = () => setRoute(parseRoute());
    addEventListener("hashchange", onHash);
    const stop = onAuthFailure(setAuthFailure);
    const onKey = (e) => {
      const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
      if (e.key === "/" && !typing) {
        const search = document.getElementById("search");
        if (search) {
          e.preventDefault();
          search.focus();
        }
      }
      if (e.key === "Escape" && typing) e.target.blur();
    };
    addEventListener("keydown", onKey);
    return () => {
      removeEventListener("hashchange", onHash);
      removeEventListener("keydown", onKey);
      stop();
    };
  }, []);

  // One authenticated call up front: a missing or refused key is asked for before any page loads.
  useEffect(() => {
    api("/api/version").then((v) => {
      setVersion(v);
      setAuthFailure(null);
      // A refused key is handled by onAuthFailure; anything else shows on the page's own reads.
    }, warn("the version"));
  }, [attempt]);

  const section = route.parts[0] ?? "executions";
  const link = (name, label) =>
    ui`<a href=${`#/${name}`} aria-current=${section === name ? "page" : undefined}>${label}</a>`;
  return ui`
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/executions">Compozy</a>
        <nav aria-label="Sections">
            ${link("executions", "Executions")} ${link("workflows", "Workflows")} ${
    link(
      "definitions",
      "Definitions",
    )
  }
          </nav>
        <span class="muted small">${
    [version && `v${version.version}`, apiKey() && "key set"].filter(Boolean).join(" · ")
  }</span>
      </header>
      <main id="main">${
    authFailure
      ? ui`<${KeyPrompt} failure=${authFailure} onSaved=${() => {
        setAuthFailure(null);
        setAttempt(attempt + 1);
      }} />`
      : ui`<${Page} route=${route} key=${`${location.hash}:${attempt}`} />`
  }</main>
    </div>
  `;
}

render(ui`<${App} />`, document.getElementById("app"));
