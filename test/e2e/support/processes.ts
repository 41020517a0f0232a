/** Processes of a Compozy run as /proc shows them: which children it started, and whether one still runs. */

/** The pids of `comm`-named children of `parent`. */
export async function childrenNamed(parent: number, comm: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(() => "");
    // pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
    const match = /^(\d+) \((.*)\) \S+ (\d+)/.exec(stat);
    if (match && match[2] === comm && Number(match[3]) === parent) pids.push(Number(match[1]));
  }
  return pids;
}

/** True while `pid` runs; a zombie (exited, not yet reaped by its new parent) counts as gone. */
export async function running(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  return stat !== "" && !/^\d+ \(.*\) Z /.test(stat);
}

/** Waits up to `timeoutMs` for `pid` to be gone; true when it is. */
export async function gone(pid: number, timeoutMs = 10_000): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; Date.now() < end && await running(pid);) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return !await running(pid);
}

/** Polls /proc until `parent` has a `comm`-named child, for up to `timeoutMs`. */
export async function childNamed(parent: number, comm: string, timeoutMs = 60_000): Promise<number> {
  for (const end = Date.now() + timeoutMs; Date.now() < end;) {
    const [pid] = await childrenNamed(parent, comm);
    if (pid) return pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no ${comm} child of ${parent} after ${timeoutMs} ms`);
}
