import { FUNCTIONS } from "./functions.ts";
import { lexExpression, type Token } from "./lexer.ts";
import { TemplateError } from "./template_error.ts";

/** Deepest nesting of parentheses, `!`, call arguments and pipe stages one expression may use. */
const MAX_DEPTH = 64;

/** An expression tree node. `pos` is the 0-based offset in the template source used in error messages. */
export type Node =
  | { type: "path"; segments: string[]; pos: number }
  | { type: "literal"; value: string | number | boolean | null; pos: number }
  | { type: "not"; operand: Node; pos: number }
  // Chains of `&&`/`||` are flat lists so long chains do not make deep trees.
  | { type: "logical"; op: "&&" | "||"; operands: Node[]; pos: number }
  | { type: "compare"; op: CompareOp; left: Node; right: Node; pos: number }
  | { type: "call"; name: string; args: Node[]; pos: number };

export type CompareOp = "==" | "!=" | "<" | "<=" | ">" | ">=";

/** A template is literal text interleaved with `{{ expression }}` parts. */
export type Part = { type: "text"; text: string } | { type: "expr"; node: Node };

const COMPARISONS = new Set(["==", "!=", "<", "<=", ">", ">="]);

/**
 * Splits `source` into text and expression parts. Text outside `{{ }}` is kept verbatim; a literal `{{`
 * can be written as `{{ "{{" }}`.
 */
export function parseTemplate(source: string): Part[] {
  const parts: Part[] = [];
  let offset = 0;
  while (offset < source.length) {
    const open = source.indexOf("{{", offset);
    if (open < 0) break;
    if (open > offset) parts.push({ type: "text", text: source.slice(offset, open) });
    const { tokens, end } = lexExpression(source, open + 2);
    const node = new Parser(source, tokens).parseAll();
    checkTreeDepth(source, node, 1);
    parts.push({ type: "expr", node });
    offset = end;
  }
  if (offset < source.length) parts.push({ type: "text", text: source.slice(offset) });
  return parts;
}

class Parser {
  private index = 0;
  private depth = 0;

  constructor(private readonly source: string, private readonly tokens: Token[]) {}

  parseAll(): Node {
    if (this.peek().kind === "close") throw this.error("empty expression", this.peek().pos);
    const node = this.expression();
    const next = this.peek();
    if (next.kind !== "close") throw this.error(`unexpected ${describe(next)}, expected "}}"`, next.pos);
    return node;
  }

  private expression(): Node {
    return this.nested(() => this.logical("||", () => this.logical("&&", () => this.comparison())));
  }

  private logical(op: "&&" | "||", operand: () => Node): Node {
    const first = operand();
    if (!this.atOperator(op)) return first;
    const node: Node = { type: "logical", op, operands: [first], pos: this.peek().pos };
    while (this.atOperator(op)) {
      this.index++;
      node.operands.push(operand());
    }
    return node;
  }

  /** Equality and ordering do not chain: `a < b < c` is almost always a mistake, so it is a syntax error. */
  private comparison(): Node {
    const left = this.unary();
    const opToken = this.peek();
    if (!this.atComparison()) return left;
    this.index++;
    const right = this.unary();
    if (this.atComparison()) {
      throw this.error('comparisons cannot be chained; use parentheses or "&&"', this.peek().pos);
    }
    return { type: "compare", op: opToken.text as CompareOp, left, right, pos: opToken.pos };
  }

  private unary(): Node {
    const token = this.peek();
    if (!this.atOperator("!")) return this.piped();
    this.index++;
    return this.nested(() => ({ type: "not", operand: this.unary(), pos: token.pos }));
  }

  /** Pipes bind tighter than operators, so `.n | default(0) > 3` compares the defaulted value. */
  private piped(): Node {
    let node = this.primary();
    while (this.peek().kind === "pipe") {
      this.index++;
      const name = this.expect("name", 'a function name after "|"');
      const args = this.peek().kind === "lparen" ? this.nested(() => this.args()) : [];
      node = this.call(name, [node, ...args]);
    }
    return node;
  }

  private primary(): Node {
    const token = this.peek();
    this.index++;
    switch (token.kind) {
      case "path":
        return { type: "path", segments: token.segments!, pos: token.pos };
      case "string":
        return { type: "literal", value: token.text, pos: token.pos };
      case "number":
        return { type: "literal", value: Number(token.text), pos: token.pos };
      case "keyword":
        return {
          type: "literal",
          value: token.text === "null" ? null : token.text === "true",
          pos: token.pos,
        };
      case "lparen": {
        const inner = this.expression();
        this.expect("rparen", '")"');
        return inner;
      }
      case "name":
        if (this.peek().kind !== "lparen") throw this.error(bareNameMessage(token.text), token.pos);
        return this.call(token, this.nested(() => this.args()));
      default:
        throw this.error(`unexpected ${describe(token)}, expected a value`, token.pos);
    }
  }

  private args(): Node[] {
    this.expect("lparen", '"("');
    const args: Node[] = [];
    if (this.peek().kind === "rparen") {
      this.index++;
      return args;
    }
    for (;;) {
      args.push(this.expression());
      if (this.peek().kind !== "comma") break;
      this.index++;
    }
    this.expect("rparen", '"," or ")"');
    return args;
  }

  /** Builds a call, checking the name and the argument count now so that typos fail at load time. */
  private call(name: Token, args: Node[]): Node {
    const fn = FUNCTIONS.get(name.text);
    if (!fn) throw this.error(`unknown function "${name.text}"`, name.pos);
    if (args.length < fn.minArgs || args.length > fn.maxArgs) {
      const want = fn.minArgs === fn.maxArgs ? `${fn.minArgs}` : `${fn.minArgs} to ${fn.maxArgs}`;
      throw this.error(`${name.text}() takes ${want} argument(s), got ${args.length}`, name.pos);
    }
    return { type: "call", name: name.text, args, pos: name.pos };
  }

  /** Bounds the parser's own recursion; `checkTreeDepth` then bounds the tree (pipes nest without this). */
  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_DEPTH) throw tooDeep(this.source, this.peek().pos);
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private expect(kind: Token["kind"], what: string): Token {
    const token = this.peek();
    if (token.kind !== kind) throw this.error(`unexpected ${describe(token)}, expected ${what}`, token.pos);
    this.index++;
    return token;
  }

  private atOperator(op: string): boolean {
    const token = this.peek();
    return token.kind === "operator" && token.text === op;
  }

  private atComparison(): boolean {
    const token = this.peek();
    return token.kind === "operator" && COMPARISONS.has(token.text);
  }

  private peek(): Token {
    return this.tokens[this.index];
  }

  private error(message: string, position: number): TemplateError {
    return new TemplateError(`${message} at position ${position}`, { source: this.source, position });
  }
}

/** The direct sub-expressions of `node`, in source order. */
export function children(node: Node): Node[] {
  switch (node.type) {
    case "not":
      return [node.operand];
    case "logical":
      return node.operands;
    case "compare":
      return [node.left, node.right];
    case "call":
      return node.args;
    default:
      return [];
  }
}

/** Keeps evaluation recursion bounded: the evaluator recurses once per tree level. */
function checkTreeDepth(source: string, node: Node, depth: number): void {
  if (depth > MAX_DEPTH) throw tooDeep(source, node.pos);
  for (const child of children(node)) checkTreeDepth(source, child, depth + 1);
}

function tooDeep(source: string, position: number): TemplateError {
  return new TemplateError(`expression nested deeper than ${MAX_DEPTH} levels at position ${position}`, {
    source,
    position,
  });
}

function bareNameMessage(name: string): string {
  if (FUNCTIONS.has(name)) return `"${name}" is a function: write ${name}(...)`;
  return `unexpected name "${name}"; paths start with ".", e.g. .${name}`;
}

function describe(token: Token): string {
  switch (token.kind) {
    case "close":
      return '"}}"';
    case "string":
      return `string ${JSON.stringify(token.text)}`;
    case "path":
      return `path ${token.text}`;
    default:
      return `"${token.text}"`;
  }
}
