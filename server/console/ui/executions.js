/**
 * The executions list: filters (workflow, status, start time), search by id, cursor paging. Live: the
 * running executions on the page are followed over SSE (at most a few streams, since a browser keeps only six
 * connections per host), and the first page is re-read every few seconds so that new executions appear.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, followEvents, TERMINAL } from "./api.js";
import {
  durationOf,
  ErrorBox,
  formatDuration,
  formatTime,
  navigate,
  Status,
  ui,
  useTick,
  warn,
} from "./common.js";
import { InvalidId, isExecId } from "./ids.js";

const STATUSES = ["RUNNING", "WAITING", "PAUSED", "SUCCESS", "FAILED", "TIMED_OUT", "CANCELED"];
const SINCE = { "": "any time", "15m": "last 15 minutes", "1h": "last hour", "24h": "last 24 hours" };
const SINCE_MS = { "15m": 900_000, "1h": 3_600_000, "24h": 86_400_000 };
const MAX_STREAMS = 4;
const REFRESH_MS = 3000;
const PAGE_SIZE = 25;

/**
 * The cursors of the pages read to reach this one (`?pages=c1,c2`): the list's place is in its address, so
 * Back from an execution opened on an older page, a reload or a link shows that page. It was kept in memory,
 * and Back showed the newest page again (outside review rev35).
 */
function pageCursors(query) {
  return (query.get("pages") ?? "").split(",").filter(Boolean);
}

/** `?limit=` of the page's URL (the API takes 1 to 500), else the default. */
function pageSize(query) {
  const n = Number(query.get("limit"));
  return Number.isInteger(n) && n >= 1 && n <= 500 ? n : PAGE_SIZE;
}

export function ExecutionsPage({ query }) {
  const [workflows, setWorkflows] = useState([]);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [search, setSearch] = useState("");
  const [searchError, setSearchError] = useState(null);
  const [invalidSearch, setInvalidSearch] = useState(null);
  const filters = {
    workflow: query.get("workflow") ?? "",
    status: query.get("status") ?? "",
    since: query.get("since") ?? "",
  };
  const cursors = pageCursors(query);
  const cursor = cursors.at(-1) ?? null;
  const limit = pageSize(query);
  const reload = useRef(() => {});
  useTick(1000, !!page?.items.some((e) => !TERMINAL.has(e.status)));

  const setFilter = (name, value) => {
    const next = new URLSearchParams(query);
    if (value) next.set(name, value);
    else next.delete(name);
    next.delete("pages");
    navigate(`#/executions?${next}`);
  };
  const goToPages = (pages) => {
    const next = new URLSearchParams(query);
    if (pages.length) next.set("pages", pages.join(","));
    else next.delete("pages");
    navigate(`#/executions?${next}`);
  };

  useEffect(() => {
    api("/api/workflows").then((r) => setWorkflows(r.items), warn("the workflows"));
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    const load = () => {
      const params = new URLSearchParams({ limit: String(limit) });
      if (filters.workflow) params.set("workflow_id", filters.workflow);
      if (filters.status) params.set("status", filters.status);
      if (cursor) params.set("cursor", cursor);
      return api(`/api/executions?${params}`, { signal: controller.signal }).then((p) => {
        setPage(p);
        setError(null);
      }, (e) => e.name !== "AbortError" && setError(e));
    };
    reload.current = load;
    load();
    // New executions show up on the first page without a reload.
    const timer = cursor ? undefined : setInterval(load, REFRESH_MS);
    return () => {
      controller.abort();
      clearInterval(timer);
    };
  }, [filters.workflow, filters.status, cursor, limit]);

  // Running executions on the page are followed live: each event re-reads the page (coalesced).
  const running = (page?.items ?? []).filter((e) => !TERMINAL.has(e.status)).slice(0, MAX_STREAMS)
    .map((e) => e.exec_id);
  useEffect(() => {
    let pending;
    const refresh = () => {
      clearTimeout(pending);
      pending = setTimeout(() => reload.current(), 150);
    };
    const stops = running.map((id) => followEvents(id, refresh, refresh));
    return () => {
      clearTimeout(pending);
      stops.forEach((stop) => stop());
    };
  }, [running.join(",")]);

  const since = SINCE_MS[filters.since];
  const items = (page?.items ?? []).filter((e) =>
    !since || (e.started_at && Date.now() - Date.parse(e.started_at) <= since)
  );

  const onSearch = async (ev) => {
    ev.preventDefault();
    const id = search.trim();
    if (!id) return;
    if (!isExecId(id)) return setInvalidSearch(id);
    try {
      await api(`/api/executions/${encodeURIComponent(id)}`);
      navigate(`#/executions/${encodeURIComponent(id)}`);
    } catch (e) {
      setSearchError(e);
    }
  };

  return ui`<section>
    <h1>Executions</h1>
    <form class="toolbar" onSubmit=${onSearch} role="search">
      <label>Workflow <select name="workflow" value=${filters.workflow} onChange=${(e) =>
    setFilter("workflow", e.target.value)}>
        <option value="">all</option>
        ${workflows.map((w) => ui`<option value=${w.id}>${w.id}</option>`)}
      </select></label>
      <label>Status <select name="status" value=${filters.status} onChange=${(e) =>
    setFilter("status", e.target.value)}>
        <option value="">all</option>
        ${STATUSES.map((s) => ui`<option value=${s}>${s}</option>`)}
      </select></label>
      <label>Started <select name="since" value=${filters.since} onChange=${(e) =>
    setFilter("since", e.target.value)}>
        ${Object.entries(SINCE).map(([v, label]) => ui`<option value=${v}>${label}</option>`)}
      </select></label>
      <label class="grow">Execution id <input
        id="search"
        type="search"
        placeholder="Go to an execution id ( / )"
        value=${search}
        onInput=${(e) => {
    setSearch(e.target.value);
    setSearchError(null);
    setInvalidSearch(null);
  }}
      /></label>
      <button type="submit">Open</button>
    </form>
    <${ErrorBox} error=${searchError} context="No such execution" />
    ${invalidSearch === null ? null : ui`<${InvalidId} kind="execution" id=${invalidSearch} />`}
    <${ErrorBox} error=${error} context="Cannot list executions" />
    ${
    page === null && !error ? ui`<p class="muted">Loading…</p>` : ui`
      <div class="table-wrap">
        <table class="list" id="executions">
          <thead>
            <tr>
              <th>Status</th>
              <th>Workflow</th>
              <th>Execution</th>
              <th>Started</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>${
      items.length === 0
        ? ui`
              <tr>
                <td colspan="5" class="muted">No executions${
          filters.workflow || filters.status ||
            filters.since
            ? " match these filters"
            : " yet"
        }.</td>
              </tr>
            `
        : items.map((e) =>
          ui`
                <tr data-exec=${e.exec_id} data-status=${e.status}>
                  <td>
                    <${Status} status=${e.status} />
                  </td>
                  <td>${e.workflow_id}</td>
                  <td><a class="mono" href=${`#/executions/${e.exec_id}`}>${e.exec_id}</a>${
            e.rerun_of ? ui` <span class="muted small">re-run</span>` : null
          }</td>
                  <td>${formatTime(e.started_at)}</td>
                  <td>${formatDuration(durationOf(e.started_at, e.ended_at))}</td>
                </tr>
              `
        )
    }</tbody>
        </table>
      </div>
    `
  }
    <nav class="pager">
      <button id="newer" disabled=${cursors.length === 0} onClick=${() =>
    goToPages(cursors.slice(0, -1))}>← Newer</button>
      <button id="older" disabled=${!page?.next_cursor} onClick=${() =>
    goToPages([...cursors, page.next_cursor])}>Older →</button>
    </nav>
  </section>`;
}
