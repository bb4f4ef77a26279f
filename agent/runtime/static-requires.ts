/** A `require('literal')` a module makes while it evaluates, and where (1-based). */
export interface StaticRequire {
  request: string;
  line: number;
  column: number;
}

type Frame = { kind: 'block' | 'object' | 'paren' | 'template'; arrow: boolean };

const KEYWORDS_BEFORE_EXPRESSION = /(?:^|[^\w$])(?:return|typeof|case|do|else|in|of|new|delete|void|throw|instanceof|yield|await)$/;
const REQUIRE = /^require\s*\(\s*(['"])((?:(?!\1)[^\\\n])*)\1\s*\)/;

/**
 * The `require('x')` calls of a CommonJS module that run when it evaluates: outside any block (a
 * function body, `try`, `if { }`) and outside any arrow function, found by a small lexer that skips
 * comments, strings, template literals and regular expressions. It errs towards leaving a call out
 * (`cond ? require('a') : b` is in, `foo(() => require('x'))` and `try { require('x') }` are not):
 * `plan` uses these to predict a failure for certain, never to guess one.
 */
export function staticRequires(source: string): StaticRequire[] {
  const found: StaticRequire[] = [];
  const stack: Frame[] = [];
  const root: Frame = { kind: 'paren', arrow: false };
  let last = '';
  // A shebang line (`#!/usr/bin/env node`), which Node strips before compiling.
  const shebangEnd = source.startsWith('#!') ? source.indexOf('\n') : 0;
  let i = shebangEnd < 0 ? source.length : shebangEnd;
  const top = (): Frame => stack[stack.length - 1] ?? root;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      i = source.indexOf('\n', i);
      if (i < 0) break;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 2;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      i = skipString(source, i, c);
      last = 'x';
      continue;
    }
    if (c === '`' || (c === '}' && top().kind === 'template')) {
      if (c === '}') stack.pop();
      const end = skipTemplate(source, i + 1);
      const interpolation = source.startsWith('${', end);
      if (interpolation) stack.push({ kind: 'template', arrow: false });
      i = end + (interpolation ? 2 : 1);
      last = interpolation ? '(' : 'x';
      continue;
    }
    if (c === '/') {
      if (last === '' || /[(,=:[!&|?{};+\-*%<>~^]/.test(last) || KEYWORDS_BEFORE_EXPRESSION.test(source.slice(Math.max(0, i - 12), i).trimEnd())) {
        i = skipRegex(source, i + 1);
        last = 'x';
        continue;
      }
    }
    if (c === '{') {
      const object = /[=:(,[?!&|]/.test(last) || /(?:^|[^\w$])(?:return|yield)$/.test(source.slice(Math.max(0, i - 8), i).trimEnd());
      stack.push({ kind: object ? 'object' : 'block', arrow: false });
    } else if (c === '(' || c === '[') {
      stack.push({ kind: 'paren', arrow: false });
    } else if (c === '}' || c === ')' || c === ']') {
      stack.pop();
    } else if (c === ';' && stack.length === 0) {
      root.arrow = false;
    } else if (c === '=' && next === '>') {
      top().arrow = true;
    } else if (c === 'r' && !/[\w$.]/.test(source[i - 1] ?? '')) {
      const m = REQUIRE.exec(source.slice(i, i + 300));
      if (m && !root.arrow && stack.every((f) => f.kind !== 'block' && !f.arrow)) {
        found.push({ request: m[2]!, ...position(source, i) });
      }
    }
    if (/[\w$]/.test(c)) {
      while (i < source.length && /[\w$]/.test(source[i]!)) i++;
      last = 'x';
      continue;
    }
    last = c;
    i++;
  }
  return found;
}

function skipString(source: string, i: number, quote: string): number {
  for (let j = i + 1; j < source.length; j++) {
    if (source[j] === '\\') j++;
    else if (source[j] === quote || source[j] === '\n') return j + 1;
  }
  return source.length;
}

/** From inside a template literal to its closing backtick or its next `${` (the index of either). */
function skipTemplate(source: string, i: number): number {
  for (let j = i; j < source.length; j++) {
    if (source[j] === '\\') j++;
    else if (source[j] === '`' || source.startsWith('${', j)) return j;
  }
  return source.length;
}

function skipRegex(source: string, i: number): number {
  let inClass = false;
  for (let j = i; j < source.length; j++) {
    const c = source[j];
    if (c === '\\') j++;
    else if (c === '\n') return j;
    else if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    else if (c === '/' && !inClass) {
      let end = j + 1;
      while (end < source.length && /[a-z]/i.test(source[end]!)) end++;
      return end;
    }
  }
  return source.length;
}

function position(source: string, index: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let j = source.indexOf('\n'); j >= 0 && j < index; j = source.indexOf('\n', j + 1)) {
    line++;
    lineStart = j + 1;
  }
  return { line, column: index - lineStart + 1 };
}
