import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** The npm package that carries buf's binary for this platform (`@bufbuild/buf-<os>-<arch>`). */
function bufPlatformPackage(): string {
  const os = Deno.build.os === "windows" ? "win32" : Deno.build.os;
  const arch = Deno.build.arch === "x86_64" ? "x64" : "aarch64";
  return `@bufbuild/buf-${os}-${arch}`;
}

/** Finds buf inside Deno's node_modules; Deno skips buf's postinstall script, so `.bin/buf` is not linked. */
async function findBuf(): Promise<string> {
  const pkg = bufPlatformPackage();
  const store = join(repoRoot, "node_modules", ".deno");
  const prefix = pkg.replace("/", "+") + "@";
  for await (const entry of Deno.readDir(store)) {
    if (entry.isDirectory && entry.name.startsWith(prefix)) {
      return join(store, entry.name, "node_modules", pkg, "bin", "buf");
    }
  }
  throw new Error(
    `Cannot generate protos: ${pkg} is not installed under ${store}. Run 'deno install' in ${repoRoot} first.`,
  );
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(`'${cmd} ${args.join(" ")}' failed with code ${out.code}: ${stderr}`);
  }
}

/**
 * Generates pkg/pb under `outDir` (default: the repository) and formats it. Returns the generated paths.
 */
export async function generateProtos(outDir: string = repoRoot): Promise<string[]> {
  await run("deno", ["install", "--quiet"], repoRoot);
  const buf = await findBuf();
  const target = join(outDir, "pkg", "pb");
  // Only generated files go: pkg/pb/mod.ts (hand-written) stays.
  await removeGenerated(target);
  await run(buf, ["generate", "--output", outDir], repoRoot);
  const files: string[] = [];
  for await (const entry of Deno.readDir(target)) {
    if (entry.name.endsWith("_pb.ts")) files.push(join(target, entry.name));
  }
  files.sort();
  await run("deno", ["fmt", "--quiet", "--config", join(repoRoot, "deno.json"), ...files], repoRoot);
  return files;
}

async function removeGenerated(dir: string): Promise<void> {
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.endsWith("_pb.ts")) await Deno.remove(join(dir, entry.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
