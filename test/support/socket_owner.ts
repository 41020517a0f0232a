/**
 * Which of some processes (or a process they started, such as a sandbox) holds a loopback TCP connection: a
 * test server sees the client's port, and a test that must kill "the runtime running the loop" among several
 * asks this which one it is. Linux only: it reads /proc/net/tcp{,6} for the connection's socket inode and
 * /proc/<pid>/fd for the process holding it.
 *
 * @module
 */

/**
 * The one of `pids` that holds (itself or through a descendant) the TCP connection from local port
 * `clientPort` to local server port `serverPort`; undefined when none does (the connection is already gone).
 */
export function socketOwner(pids: number[], clientPort: number, serverPort: number): number | undefined {
  const inode = socketInode(clientPort, serverPort);
  if (inode === undefined) return undefined;
  const holder = processHolding(inode);
  if (holder === undefined) return undefined;
  for (let pid: number | undefined = holder; pid !== undefined && pid > 1; pid = parentOf(pid)) {
    if (pids.includes(pid)) return pid;
  }
  return undefined;
}

function socketInode(clientPort: number, serverPort: number): string | undefined {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue; // no IPv6 table on this host
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      if (portOf(fields[1]) === clientPort && portOf(fields[2]) === serverPort) return fields[9];
    }
  }
  return undefined;
}

function portOf(address: string): number {
  return parseInt(address.slice(address.lastIndexOf(":") + 1), 16);
}

function processHolding(inode: string): number | undefined {
  const target = `socket:[${inode}]`;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      for (const fd of Deno.readDirSync(`/proc/${entry.name}/fd`)) {
        if (Deno.readLinkSync(`/proc/${entry.name}/fd/${fd.name}`) === target) return Number(entry.name);
      }
    } catch {
      // Another user's process, or one that ended meanwhile.
    }
  }
  return undefined;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name in parentheses may hold spaces: the fields after its closing parenthesis are fixed.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}
