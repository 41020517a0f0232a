/**
 * What the kernel refuses a sandbox process (a tool's, or a `script` MCP server's), installed before any of
 * its untrusted code exists, because Deno's permissions cannot express it (issue 10):
 *
 * - **Set-user-ID and set-group-ID modes**, for a process that may write (rt33). Deno checks a mode change as
 *   a write and passes the bits through: a tool with a `write` grant made setuid files by `Deno.chmod`, a
 *   `mode` option, a copy of a setuid file it could read, and Node's `chmod`, `fchmod` and
 *   `FileHandle.chmod`. Such a file runs as its owner (root, when the runtime is root) for whoever on the host
 *   starts it, outside every sandbox. Node's `fchmod` and `cp` call Deno's ops directly, so no function of
 *   the worker's realm can be replaced to stop them. The filter makes `chmod`, `fchmod`, `fchmodat`,
 *   `fchmodat2`, `open`, `openat`, `creat`, `mknod` and `mknodat` fail with `EPERM` when their mode holds
 *   either bit; `openat2` (whose mode lies behind a pointer the filter cannot read) fails with `ENOSYS`,
 *   which makes callers fall back to `openat`.
 * - **Folders every user of the host may add to**, for a process that may write (outside break attempt
 *   brk36): `Deno.chmod(folder, 0o777)` on a granted folder let any local user create entries in it after the
 *   runtime's start-up scan for symlinks that lead out of it (grant_paths.ts), so a later call read or wrote
 *   through a link planted there. `chmod`, `fchmod`, `fchmodat` and `fchmodat2` fail with `EPERM` when the
 *   mode gives others both write and search (0o003), which creating an entry in a folder needs. Write alone
 *   stays allowed: Deno's `node:fs` sets the mode it is given after writing (`appendFileSync` does
 *   `chmod(path, 0o666)`), and refusing the bit broke every such call. A creation's mode is masked by the
 *   process's umask, which its start line clears others' write from (descriptor_limit.ts), since
 *   `mkdir(0o777)` is every folder's creation. For the same reason the `chown` family (`chown`, `fchown`,
 *   `lchown`, `fchownat`) fails with `EPERM` whatever its arguments (outside break attempt brk37): a runtime
 *   running as root let a tool give its granted folder to `nobody`, and any runtime user could move it into
 *   one of its groups, whose members then add entries to it. No tool needs to change an owner.
 * - **Unix domain sockets**, for a process granted `net: true` (sbx34). Deno 2.9.6 checks a Linux abstract
 *   socket (`path: "\0name"`) as `net`, not as a path, so `net: true` listened on and connected to every
 *   abstract socket of the runtime's network namespace (D-Bus, container shims), which no deny flag can
 *   name. `socket(AF_UNIX, …)` fails with `EPERM` (its domain is a plain argument the filter reads);
 *   `socketpair` stays allowed (an unnamed pair reaches nothing). This takes path sockets from such a process
 *   too: a tool that needs one is granted a host list (or no `net`) and read and write on the socket's path.
 * - **Listening sockets**, for a process granted `net: true` (outside break attempt brk35). `net: true` lets Deno
 *   listen on any port of the host, and a port is taken by whoever binds it first: while a local service that
 *   another tool is granted by a list (`net: ["127.0.0.1:8080"]`) was down or restarting, a `net: true` tool
 *   listened on its port and received that tool's requests with the secret from its env (`Authorization`),
 *   and could answer in the service's place. The runtime cannot deny those ports to the one and not the
 *   other (deny flags win over any grant, and it knows a tool's list only when that tool is called), so
 *   `listen` fails with `EPERM` in such a process: it connects anywhere, it listens nowhere. The same holds
 *   for a list that names a host without a port (`net: ["localhost"]`): Deno lets it listen on every port
 *   of that host, as it lets it connect to every one, so it squatted a port exactly as `net: true` did
 *   (outside break attempt brk36). A grant of a host without a port is a grant to connect; a tool that must
 *   listen names the address and port, and only such entries (`net: ["0.0.0.0:9000", "api.example.com:443"]`):
 *   such a list gets no filter, and Deno refuses every other port. UDP has no `listen`: a bound UDP socket
 *   receives at once. Its `bind` to a port is refused in the tool's worker (tool_worker.ts), since the
 *   filter cannot read the port, which lies behind a pointer.
 * - **Files over a size** (`RLIMIT_FSIZE`), for a process that may write (sbx34): a `write` grant had no
 *   bound (400 MiB in 1.4 s). `SIGXFSZ` is ignored, so a write past the bound fails with `EFBIG` ("File too
 *   large"), an error the tool sees, instead of killing the process; the file keeps the bytes up to the bound.
 *
 * Anything else passes. The seccomp filter goes on every thread of the process (TSYNC), and so on the
 * worker's and every thread started later. Installing it needs `ffi` on the C library, the one `ffi` grant a
 * sandbox process gets; it is revoked once the limits are in, before the worker (or a script's own code)
 * starts, so neither the tool nor the host has it afterwards. A tool's sandbox installs them from its host
 * thread (worker_host.ts); a `script` MCP server from its prelude (mcp_transport.ts), which embeds
 * {@linkcode loadKernelLimits}' source.
 *
 * @module
 */

/**
 * A syscall whose mode argument is checked, the argument's index, and whether it changes the mode of a file
 * that exists (the `chmod` family: write with search for others is refused too; a creation's mode is masked
 * by the umask).
 */
type ModeSyscall = readonly [nr: number, modeArg: number, changesMode?: true];

interface ArchFilter {
  /** `AUDIT_ARCH_*` of the architecture: a syscall made under another ABI is refused. */
  audit: number;
  seccomp: number;
  openat2: number;
  socket: number;
  listen: number;
  modeSyscalls: readonly ModeSyscall[];
  /** The `chown` family: refused whatever its arguments. */
  ownerSyscalls: readonly number[];
  /** Syscall numbers from this one up belong to another ABI of the same architecture (x32). */
  foreignFrom?: number;
}

const FILTERS: Partial<Record<typeof Deno.build.arch, ArchFilter>> = {
  x86_64: {
    audit: 0xc000003e,
    seccomp: 317,
    openat2: 437,
    socket: 41,
    listen: 50,
    // chmod, fchmod, fchmodat, fchmodat2, open, openat, creat, mknod, mknodat
    modeSyscalls: [
      [90, 1, true],
      [91, 1, true],
      [268, 2, true],
      [452, 2, true],
      [2, 2],
      [257, 3],
      [85, 1],
      [133, 1],
      [259, 2],
    ],
    // chown, fchown, lchown, fchownat
    ownerSyscalls: [92, 93, 94, 260],
    foreignFrom: 0x40000000,
  },
  aarch64: {
    audit: 0xc00000b7,
    seccomp: 277,
    openat2: 437,
    socket: 198,
    listen: 201,
    // fchmod, fchmodat, fchmodat2, openat, mknodat
    modeSyscalls: [[52, 1, true], [53, 2, true], [452, 2, true], [56, 3], [33, 2]],
    // fchownat, fchown
    ownerSyscalls: [54, 55],
  },
};

const SET_ID_BITS = 0o6000;
/** Write and search (execute) for users other than the owner and its group: see the module's doc. */
const OTHERS_WRITE_SEARCH = 0o003;
const AF_UNIX = 1;
const EPERM = 1;
const ENOSYS = 38;

// Classic BPF, as seccomp takes it.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const ALU_AND_K = 0x54;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
// struct seccomp_data: nr at 0, arch at 4, args from 16, 8 bytes each (the low half first on both archs; the
// kernel reads the mode and the domain as 32-bit ints, so the low half is what it acts on).
const NR = 0;
const ARCH = 4;
const argOffset = (index: number) => 16 + 8 * index;

type Instruction = readonly [code: number, jt: number, jf: number, k: number];

/** What a process refuses: see the module's doc. */
export interface KernelRules {
  /** Refuse set-user-ID and set-group-ID modes (a process that may write). */
  setIdModes: boolean;
  /** Refuse `socket(AF_UNIX, …)` (a process granted `net: true`). */
  unixSockets: boolean;
  /** Refuse `listen` (a process granted `net: true` or a host without a port): see the module's doc. */
  listening: boolean;
}

/** The filter program for `arch` with `rules`. */
function filterProgram(arch: ArchFilter, rules: KernelRules): Instruction[] {
  const program: Instruction[] = [
    [LD_W_ABS, 0, 0, ARCH],
    [JEQ_K, 1, 0, arch.audit],
    [RET_K, 0, 0, RET_ERRNO | EPERM],
    [LD_W_ABS, 0, 0, NR],
  ];
  if (arch.foreignFrom !== undefined) {
    program.push([JGE_K, 0, 1, arch.foreignFrom], [RET_K, 0, 0, RET_ERRNO | EPERM]);
  }
  if (rules.unixSockets) {
    program.push(
      [JEQ_K, 0, 3, arch.socket],
      [LD_W_ABS, 0, 0, argOffset(0)],
      [JEQ_K, 0, 1, AF_UNIX],
      [RET_K, 0, 0, RET_ERRNO | EPERM],
      [LD_W_ABS, 0, 0, NR],
    );
  }
  if (rules.listening) {
    program.push([JEQ_K, 0, 1, arch.listen], [RET_K, 0, 0, RET_ERRNO | EPERM]);
  }
  if (rules.setIdModes) {
    program.push([JEQ_K, 0, 1, arch.openat2], [RET_K, 0, 0, RET_ERRNO | ENOSYS]);
    for (const [nr, modeArg, changesMode] of arch.modeSyscalls) {
      program.push(
        [LD_W_ABS, 0, 0, NR],
        [JEQ_K, 0, changesMode ? 6 : 3, nr],
        [LD_W_ABS, 0, 0, argOffset(modeArg)],
        [JSET_K, 0, 1, SET_ID_BITS],
        [RET_K, 0, 0, RET_ERRNO | EPERM],
      );
      if (changesMode) {
        program.push(
          [ALU_AND_K, 0, 0, OTHERS_WRITE_SEARCH],
          [JEQ_K, 0, 1, OTHERS_WRITE_SEARCH],
          [RET_K, 0, 0, RET_ERRNO | EPERM],
        );
      }
    }
    program.push([LD_W_ABS, 0, 0, NR]);
    for (const nr of arch.ownerSyscalls) program.push([JEQ_K, 0, 1, nr], [RET_K, 0, 0, RET_ERRNO | EPERM]);
  }
  program.push([RET_K, 0, 0, RET_ALLOW]);
  return program;
}

/**
 * The default bound on a file a sandbox writes (COMPOZY_SANDBOX_MAX_FILE_BYTES): room for the reports, images
 * and data sets a tool makes, while one call no longer fills a disk with one file.
 */
export const DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024;
/** Deno writes its own caches under the same bound: below this it may fail to. */
export const MIN_MAX_FILE_BYTES = 1024 * 1024;

/** What a sandbox process installs before its untrusted code exists; see {@linkcode kernelLimitsFor}. */
export interface KernelLimits extends KernelRules {
  /** The runtime's C library, which the process opens (through a transient `ffi` grant) to install them. */
  library: string;
  /** `RLIMIT_FSIZE`: the most bytes a file the process writes may hold; absent: no bound. */
  maxFileBytes?: number;
}

/** The grants that decide a process's limits, written out (see {@linkcode kernelLimitsFor}). */
export interface KernelLimitGrants {
  write: true | readonly string[];
  net: true | readonly string[];
}

/**
 * The limits of a process with `grants` (a tool's sandbox, a script MCP server), or undefined when it needs
 * none (it may not write, nor has `net: true`, and so skips their start-up cost) or where there are none
 * (not Linux, another architecture, no `/proc`, no dynamic `libc.so.6`: see docs/runtime-sandbox.md).
 * The grants' type is written out, not imported from permissions.ts: this module is in the sandbox host's
 * module graph, whose files a write grant may not name (test/runtime/redteam5_test.ts), and which should not
 * grow for a type.
 */
export function kernelLimitsFor(grants: KernelLimitGrants, maxFileBytes: number): KernelLimits | undefined {
  const mayWrite = grants.write === true || grants.write.length > 0;
  const rules = {
    setIdModes: mayWrite,
    unixSockets: grants.net === true,
    listening: connectsOnly(grants.net),
  };
  if (!rules.setIdModes && !rules.unixSockets && !rules.listening) return undefined;
  const library = kernelLimitsLibrary();
  if (library === undefined) return undefined;
  return { library, ...rules, ...(mayWrite ? { maxFileBytes } : {}) };
}

/**
 * Whether a `net` grant lets a process connect but never listen or bind a port: `true`, or a list with a host
 * that names no port (`localhost`, `[::1]`, `::1`), which Deno would let listen on every port of it (see the
 * module's doc). A list of `host:port` (and `unix:` socket) entries only may listen where it names.
 */
export function connectsOnly(net: true | readonly string[]): boolean {
  return net === true || net.some((entry) => !NAMED_ADDRESS.test(entry));
}

/** `host:port`, `[v6]:port`, or a `unix:` socket; a bare IPv6 address (`::1`) has colons but no port. */
const NAMED_ADDRESS = /^((\[[^\]]*\]|[^:\[\]]+):\d+|unix:.+)$/;

/**
 * The C library the runtime's own process has loaded, for a sandbox to install its limits with; undefined
 * where there are none (not Linux, another architecture, no `/proc`, no dynamic `libc.so.6`).
 */
export function kernelLimitsLibrary(): string | undefined {
  if (filterLibrary === null) filterLibrary = findFilterLibrary();
  return filterLibrary;
}

/** The runtime's C library, found once: null until looked for. */
let filterLibrary: string | undefined | null = null;

function findFilterLibrary(): string | undefined {
  if (Deno.build.os !== "linux" || FILTERS[Deno.build.arch] === undefined) return undefined;
  let maps: string;
  try {
    maps = Deno.readTextFileSync("/proc/self/maps");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return maps.match(/\s(\/\S*\/libc\.so\.6)$/m)?.[1];
}

/** Installing the limits failed: the sandbox must not run the tool without them. */
export class KernelLimitsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(`the sandbox could not install its kernel limits: ${message}`, options);
    this.name = "KernelLimitsError";
  }
}

/** A filter for this machine's architecture, as `struct sock_filter`s, and the `seccomp` syscall's number. */
export interface FilterProgram {
  seccomp: number;
  /** The instructions, 8 bytes each, as numbers: a script server's prelude embeds them as JSON. */
  bytes: number[];
}

/** The filter of `rules` for `arch`; undefined where there is none. */
export function filterProgramFor(
  arch: typeof Deno.build.arch,
  rules: KernelRules,
): FilterProgram | undefined {
  const filter = FILTERS[arch];
  if (filter === undefined) return undefined;
  const program = filterProgram(filter, rules);
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, true);
  });
  return { seccomp: filter.seccomp, bytes: [...bytes] };
}

/**
 * Installs `limits` in this process (the filter on every thread) and revokes `ffi`. Runs in the host thread,
 * before the worker exists.
 *
 * @throws {KernelLimitsError} when the library cannot be opened or the kernel refuses a limit
 */
export function installKernelLimits(limits: KernelLimits): void {
  const program = filterProgramFor(Deno.build.arch, limits);
  if (program === undefined) throw new KernelLimitsError(`no filter for ${Deno.build.arch}`);
  try {
    loadKernelLimits(Deno, limits.library, program, limits.maxFileBytes);
  } catch (e) {
    throw new KernelLimitsError((e as Error).message, { cause: e });
  }
}

/**
 * Through the C library at `libraryPath`: bounds the size of the files this process writes to
 * `maxFileBytes` (when given; `SIGXFSZ` ignored, so a write past it fails `EFBIG`), loads `program` on every
 * thread, then revokes `ffi`. Self-contained (it uses its arguments only): a `script` MCP server's prelude
 * embeds its source, since that process loads none of the runtime's files (mcp_transport.ts).
 *
 * @throws {Error} when the library cannot be opened or the kernel refuses a limit
 */
export function loadKernelLimits(
  deno: typeof Deno,
  libraryPath: string,
  program: FilterProgram,
  maxFileBytes: number | undefined,
): void {
  const PR_SET_NO_NEW_PRIVS = 38;
  const SECCOMP_SET_MODE_FILTER = 1n;
  const SECCOMP_FILTER_FLAG_TSYNC = 1n;
  const RLIMIT_FSIZE = 1;
  const SIGXFSZ = 25;
  const SIG_IGN = 1n;
  let library;
  try {
    library = deno.dlopen(libraryPath, {
      prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      syscall: { parameters: ["i64", "u64", "u64", "buffer"], result: "i64" },
      setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
      signal: { parameters: ["i32", "usize"], result: "usize" },
      // Returns its first argument: the address of a buffer, without `Deno.UnsafePointer` (which needs
      // unscoped `ffi`).
      memcpy: { parameters: ["buffer", "buffer", "usize"], result: "u64" },
    });
  } catch (e) {
    throw new Error(`opening ${libraryPath}: ${(e as Error).message}`, { cause: e });
  }
  try {
    if (maxFileBytes !== undefined) {
      // SIG_ERR is all ones. The signal first: a write past the bound must never find it at its default
      // (which ends the process).
      if (library.symbols.signal(SIGXFSZ, SIG_IGN) === 0xffffffffffffffffn) {
        throw new Error("signal(SIGXFSZ, SIG_IGN) failed");
      }
      // struct rlimit: soft, then hard; both, so that the process cannot raise it again.
      const bound = new BigUint64Array([BigInt(maxFileBytes), BigInt(maxFileBytes)]);
      if (library.symbols.setrlimit(RLIMIT_FSIZE, new Uint8Array(bound.buffer)) !== 0) {
        throw new Error(`setrlimit(RLIMIT_FSIZE, ${maxFileBytes}) failed`);
      }
    }
    const filter = new Uint8Array(program.bytes);
    // struct sock_fprog: the instruction count, then (8-aligned) the program's address.
    const fprog = new Uint8Array(16);
    const fview = new DataView(fprog.buffer);
    fview.setUint16(0, filter.length / 8, true);
    fview.setBigUint64(8, BigInt(library.symbols.memcpy(filter, filter, 0n)), true);
    // Required of a process without CAP_SYS_ADMIN; a sandbox never starts programs, so it loses nothing.
    if (library.symbols.prctl(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n) !== 0) {
      throw new Error("prctl(PR_SET_NO_NEW_PRIVS) failed");
    }
    const installed = library.symbols.syscall(
      BigInt(program.seccomp),
      SECCOMP_SET_MODE_FILTER,
      SECCOMP_FILTER_FLAG_TSYNC,
      fprog,
    );
    if (installed !== 0n) throw new Error(`seccomp(SECCOMP_SET_MODE_FILTER) returned ${installed}`);
  } finally {
    library.close();
  }
  deno.permissions.revokeSync({ name: "ffi" });
}
