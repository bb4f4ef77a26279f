import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** An app error as a one-line reason (`routes/index.js:7:3: SyntaxError: missing ) ...`) and its full stack. */
export interface ErrorInfo {
  message: string;
  stack?: string;
}

/**
 * Where in the app an error comes from, relative to the release it was evaluated from: the first
 * stack frame inside one of `roots` outside node_modules, else the first inside one of them. A
 * SyntaxError from compiling a module has no frame of its own: Node puts `file:line` on the stack's
 * first line, then the source line and a caret under the offending token, which gives the column.
 */
export function errorLocation(err: unknown, roots: readonly string[]): string | undefined {
  const stack = (err as { stack?: unknown } | null)?.stack;
  if (typeof stack !== 'string') return undefined;
  const lines = stack.split('\n');
  const head = /^(.+):(\d+)$/.exec(lines[0] ?? '');
  if (head) {
    const caret = (lines[2] ?? '').indexOf('^');
    const where = relativeTo(head[1]!, roots);
    if (where !== undefined) return `${where}:${head[2]}${caret >= 0 ? `:${caret + 1}` : ''}`;
  }
  let fallback: string | undefined;
  for (const line of lines) {
    const frame = /^\s+at (?:.*\()?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/.exec(line);
    if (!frame) continue;
    const where = relativeTo(frame[1]!, roots);
    if (where === undefined) continue;
    const located = `${where}:${frame[2]}:${frame[3]}`;
    if (!where.split('/').includes('node_modules')) return located;
    fallback ??= located;
  }
  return fallback;
}

/** `file:line:col: Name: first line of the message`, or the first line alone when no app frame says where. */
export function describeError(err: unknown, roots: readonly string[]): ErrorInfo {
  if (!(err instanceof Error)) return { message: firstLine(String(err)) };
  const location = errorLocation(err, roots);
  const name = err.name && err.name !== 'Error' && !err.message.startsWith(err.name) ? `${err.name}: ` : '';
  const text = `${name}${firstLine(err.message)}`;
  return { message: location ? `${location}: ${text}` : text, ...(err.stack ? { stack: err.stack } : {}) };
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]!.trim();
}

function relativeTo(file: string, roots: readonly string[]): string | undefined {
  let absolute = file;
  if (file.startsWith('file://')) {
    try {
      absolute = fileURLToPath(file);
    } catch {
      return undefined;
    }
  }
  for (const root of roots) {
    if (absolute.startsWith(root + path.sep)) return path.relative(root, absolute).split(path.sep).join('/');
  }
  return undefined;
}
