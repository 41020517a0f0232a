/**
 * Keeps a sandbox process from giving a file the set-user-ID or set-group-ID bit (issue 10, rt33).
 *
 * Deno checks a mode change as a write and passes the bits through: a tool with a `write` grant made
 * setuid files by `Deno.chmod`, a `mode` option, a copy of a setuid file it could read, and Node's `chmod`,
 * `fchmod` and `FileHandle.chmod`. Such a file runs as its owner (root, when the runtime is root) for
 * whoever on the host starts it, outside every sandbox. Node's `fchmod` and `cp` call Deno's ops directly,
 * so no function of the worker's realm can be replaced to stop them: the kernel must refuse.
 *
 * So the host thread, before any tool code exists, installs a seccomp filter on every thread of its process
 * (and so on the worker's, and every thread started later): `chmod`, `fchmod`, `fchmodat`, `fchmodat2`,
 * `open`, `openat`, `creat`, `mknod` and `mknodat` fail with `EPERM` when their mode holds either bit;
 * `openat2` (whose mode lies behind a pointer the filter cannot read) fails with `ENOSYS`, which makes
 * callers fall back to `openat`. Anything else, and the sticky bit, passes. The filter needs `ffi` on the C
 * library, the one `ffi` grant a sandbox process gets; the host revokes it once the filter is in, before the
 * worker starts, so neither the tool nor the host has it afterwards. A `script` MCP server that may write
 * gets the same filter from its prelude, before the script's own code runs (mcp_transport.ts).
 *
 * @module
 */

/** A syscall whose mode argument is checked, and the argument's index. */
type ModeSyscall = readonly [nr: number, modeArg: number];

interface ArchFilter {
  /** `AUDIT_ARCH_*` of the architecture: a syscall made under another ABI is refused. */
  audit: number;
  seccomp: number;
  openat2: number;
  modeSyscalls: readonly ModeSyscall[];
  /** Syscall numbers from this one up belong to another ABI of the same architecture (x32). */
  foreignFrom?: number;
}

const FILTERS: Partial<Record<typeof Deno.build.arch, ArchFilter>> = {
  x86_64: {
    audit: 0xc000003e,
    seccomp: 317,
    openat2: 437,
    // chmod, fchmod, fchmodat, fchmodat2, open, openat, creat, mknod, mknodat
    modeSyscalls: [[90, 1], [91, 1], [268, 2], [452, 2], [2, 2], [257, 3], [85, 1], [133, 1], [259, 2]],
    foreignFrom: 0x40000000,
  },
  aarch64: {
    audit: 0xc00000b7,
    seccomp: 277,
    openat2: 437,
    // fchmod, fchmodat, fchmodat2, openat, mknodat
    modeSyscalls: [[52, 1], [53, 2], [452, 2], [56, 3], [33, 2]],
  },
};

const SET_ID_BITS = 0o6000;
const EPERM = 1;
const ENOSYS = 38;

// Classic BPF, as seccomp takes it.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
// struct seccomp_data: nr at 0, arch at 4, args from 16, 8 bytes each (the low half first on both archs).
const NR = 0;
const ARCH = 4;
const argOffset = (index: number) => 16 + 8 * index;

type Instruction = readonly [code: number, jt: number, jf: number, k: number];

/** The filter program for `arch`. */
function setIdFilterProgram(arch: ArchFilter): Instruction[] {
  const program: Instruction[] = [
    [LD_W_ABS, 0, 0, ARCH],
    [JEQ_K, 1, 0, arch.audit],
    [RET_K, 0, 0, RET_ERRNO | EPERM],
    [LD_W_ABS, 0, 0, NR],
  ];
  if (arch.foreignFrom !== undefined) {
    program.push([JGE_K, 0, 1, arch.foreignFrom], [RET_K, 0, 0, RET_ERRNO | EPERM]);
  }
  program.push([JEQ_K, 0, 1, arch.openat2], [RET_K, 0, 0, RET_ERRNO | ENOSYS]);
  for (const [nr, modeArg] of arch.modeSyscalls) {
    program.push(
      [LD_W_ABS, 0, 0, NR],
      [JEQ_K, 0, 3, nr],
      [LD_W_ABS, 0, 0, argOffset(modeArg)],
      [JSET_K, 0, 1, SET_ID_BITS],
      [RET_K, 0, 0, RET_ERRNO | EPERM],
    );
  }
  program.push([RET_K, 0, 0, RET_ALLOW]);
  return program;
}

/**
 * The C library the runtime's own process has loaded, for the sandbox to install the filter with; undefined
 * where there is no filter (not Linux, another architecture, no `/proc`, no dynamic `libc.so.6`).
 */
export function setIdFilterLibrary(): string | undefined {
  if (filterLibrary === null) filterLibrary = findFilterLibrary();
  return filterLibrary;
}

/**
 * The library for the filter of a process granted `write` (a tool's sandbox, a script MCP server), or
 * undefined: a process that may write nothing cannot make a file set-ID, and skips the filter's start-up cost.
 * The grant's type is written out, not imported from permissions.ts: this module is in the sandbox host's
 * module graph, whose files a write grant may not name (test/runtime/redteam5_test.ts), and which should not
 * grow for a type.
 */
export function setIdFilterLibraryFor(write: true | readonly string[]): string | undefined {
  return write === true || write.length > 0 ? setIdFilterLibrary() : undefined;
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

/** Installing the filter failed: the sandbox must not run the tool without it. */
export class SetIdFilterError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(`the sandbox could not refuse set-user-ID modes: ${message}`, options);
    this.name = "SetIdFilterError";
  }
}

/** The filter of this machine's architecture, as `struct sock_filter`s, and the `seccomp` syscall's number. */
export interface SetIdFilterProgram {
  seccomp: number;
  /** The instructions, 8 bytes each, as numbers: a script server's prelude embeds them as JSON. */
  bytes: number[];
}

/** The filter for this architecture; undefined where there is none. */
export function setIdFilterProgramFor(arch: typeof Deno.build.arch): SetIdFilterProgram | undefined {
  const filter = FILTERS[arch];
  if (filter === undefined) return undefined;
  const program = setIdFilterProgram(filter);
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
 * Installs the filter on every thread of this process and revokes `ffi`. Runs in the host thread, before
 * the worker exists.
 *
 * @throws {SetIdFilterError} when the library cannot be opened or the kernel refuses the filter
 */
export function installSetIdFilter(libraryPath: string): void {
  const program = setIdFilterProgramFor(Deno.build.arch);
  if (program === undefined) throw new SetIdFilterError(`no filter for ${Deno.build.arch}`);
  try {
    loadSetIdFilter(Deno, libraryPath, program);
  } catch (e) {
    throw new SetIdFilterError((e as Error).message, { cause: e });
  }
}

/**
 * Loads `program` through the C library at `libraryPath` on every thread of this process, then revokes
 * `ffi`. Self-contained (it uses its arguments only): a `script` MCP server's prelude embeds its source,
 * since that process loads none of the runtime's files (mcp_transport.ts).
 *
 * @throws {Error} when the library cannot be opened or the kernel refuses the filter
 */
export function loadSetIdFilter(deno: typeof Deno, libraryPath: string, program: SetIdFilterProgram): void {
  const PR_SET_NO_NEW_PRIVS = 38;
  const SECCOMP_SET_MODE_FILTER = 1n;
  const SECCOMP_FILTER_FLAG_TSYNC = 1n;
  let library;
  try {
    library = deno.dlopen(libraryPath, {
      prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
      syscall: { parameters: ["i64", "u64", "u64", "buffer"], result: "i64" },
      // Returns its first argument: the address of a buffer, without `Deno.UnsafePointer` (which needs
      // unscoped `ffi`).
      memcpy: { parameters: ["buffer", "buffer", "usize"], result: "u64" },
    });
  } catch (e) {
    throw new Error(`opening ${libraryPath}: ${(e as Error).message}`, { cause: e });
  }
  try {
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
