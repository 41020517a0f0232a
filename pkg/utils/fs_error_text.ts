/**
 * A file system error's message without the operation and path Deno appends (`Not a directory (os error 20):
 * stat '/p/greet.ts/x.ts'`), for a message that names the file already. The match runs to the end of the
 * message, so a path holding a quote goes too.
 */
export function fsErrorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/: (?:stat|lstat|open|read|readfile|realpath) '.*'$/s, "");
}
