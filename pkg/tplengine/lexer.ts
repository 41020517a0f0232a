import { TemplateError } from "./template_error.ts";

/** What a token is; `close` is the `}}` that ends an expression. */
export type TokenKind =
  | "path"
  | "string"
  | "number"
  | "keyword"
  | "name"
  | "operator"
  | "lparen"
  | "rparen"
  | "comma"
  | "pipe"
  | "close";

/** One lexical unit of an expression. `pos` is the 0-based offset of its first character in the source. */
export interface Token {
  kind: TokenKind;
  /** The text as written (for `string`, the decoded value). */
  text: string;
  pos: number;
  /** Path segments, for `path` tokens. */
  segments?: string[];
}

const OPERATORS = ["==", "!=", "<=", ">=", "&&", "||", "<", ">", "!"];
const KEYWORDS = new Set(["true", "false", "null"]);
const ESCAPES: Record<string, string> = {
  '"': '"',
  "'": "'",
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

const isDigit = (c: string) => c >= "0" && c <= "9";
const isNameStart = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isNamePart = (c: string) => isNameStart(c) || isDigit(c);
// `-` belongs to the segment because ids like `get-weather` are common and there is no arithmetic.
const isSegmentChar = (c: string) => isNamePart(c) || c === "-";
const isSpace = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\r";

/**
 * Splits the expression that starts at `start` (just after a `{{`) into tokens, up to and including the
 * closing `}}`. Returns the tokens and the offset just past `}}`.
 */
export function lexExpression(source: string, start: number): { tokens: Token[]; end: number } {
  const lexer = new Lexer(source, start);
  const tokens: Token[] = [];
  for (;;) {
    const token = lexer.next();
    tokens.push(token);
    if (token.kind === "close") return { tokens, end: lexer.offset };
  }
}

class Lexer {
  offset: number;

  constructor(private readonly source: string, start: number) {
    this.offset = start;
  }

  next(): Token {
    const src = this.source;
    while (this.offset < src.length && isSpace(src[this.offset])) this.offset++;
    const pos = this.offset;
    if (pos >= src.length) throw this.error('unterminated "{{": no closing "}}"', this.openingBraces());
    const c = src[pos];
    if (src.startsWith("}}", pos)) return this.take("close", "}}");
    if (c === ".") return this.path();
    if (c === '"' || c === "'") return this.string(c);
    if (isDigit(c) || (c === "-" && isDigit(src[pos + 1] ?? ""))) return this.number();
    if (isNameStart(c)) return this.name();
    if (c === "(") return this.take("lparen", c);
    if (c === ")") return this.take("rparen", c);
    if (c === ",") return this.take("comma", c);
    const op = OPERATORS.find((o) => src.startsWith(o, pos));
    if (op) return this.take("operator", op);
    if (c === "|") return this.take("pipe", c);
    throw this.error(`unexpected character ${JSON.stringify(c)}`, pos);
  }

  /** The offset of the `{{` this expression belongs to, so an unterminated template points at its start. */
  private openingBraces(): number {
    return this.source.lastIndexOf("{{", this.offset - 1);
  }

  private take(kind: TokenKind, text: string): Token {
    const token = { kind, text, pos: this.offset };
    this.offset += text.length;
    return token;
  }

  private path(): Token {
    const src = this.source;
    const pos = this.offset;
    const segments: string[] = [];
    while (src[this.offset] === ".") {
      const segStart = ++this.offset;
      while (this.offset < src.length && isSegmentChar(src[this.offset])) this.offset++;
      if (this.offset === segStart) {
        throw this.error('a path needs a name after each ".", e.g. .workflow.input', segStart - 1);
      }
      segments.push(src.slice(segStart, this.offset));
    }
    return { kind: "path", text: src.slice(pos, this.offset), pos, segments };
  }

  private string(quote: string): Token {
    const src = this.source;
    const pos = this.offset++;
    let value = "";
    for (;;) {
      if (this.offset >= src.length) throw this.error("unterminated string literal", pos);
      const c = src[this.offset++];
      if (c === quote) return { kind: "string", text: value, pos };
      if (c !== "\\") {
        value += c;
        continue;
      }
      value += this.escape();
    }
  }

  private escape(): string {
    const src = this.source;
    const at = this.offset - 1;
    const c = src[this.offset++] ?? "";
    if (c in ESCAPES) return ESCAPES[c];
    if (c === "u") {
      const hex = src.slice(this.offset, this.offset + 4);
      if (/^[0-9a-fA-F]{4}$/.test(hex)) {
        this.offset += 4;
        return String.fromCharCode(parseInt(hex, 16));
      }
    }
    throw this.error(`invalid escape ${JSON.stringify("\\" + c)} in string literal`, at);
  }

  private number(): Token {
    const match = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
    match.lastIndex = this.offset;
    const text = match.exec(this.source)![0];
    const token = this.take("number", text);
    // `12abc` or `1.2.3` would otherwise lex as a number followed by garbage with a confusing message.
    const after = this.source[this.offset] ?? "";
    if (isNamePart(after) || after === ".") {
      throw this.error(`invalid number ${JSON.stringify(text + after)}`, token.pos);
    }
    return token;
  }

  private name(): Token {
    const src = this.source;
    const pos = this.offset;
    while (this.offset < src.length && isNamePart(src[this.offset])) this.offset++;
    const text = src.slice(pos, this.offset);
    return { kind: KEYWORDS.has(text) ? "keyword" : "name", text, pos };
  }

  private error(message: string, position: number): TemplateError {
    return new TemplateError(`${message} at position ${position}`, { source: this.source, position });
  }
}
