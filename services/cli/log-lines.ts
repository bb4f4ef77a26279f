import { Writable } from 'node:stream';
import { CliError } from './errors.js';

export type LogFormat = 'json' | 'pretty';

/** pino's numeric levels, as the labels a reader expects. */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, shown in its own place or not at all. */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

/**
 * `--log-format` (env HOTDEPLOY_LOG_FORMAT): `pretty` on a terminal, JSON (pino's own, one object a
 * line, for log collectors) when the output is not a terminal, unless the flag says otherwise.
 */
export function logFormat(flag: string | undefined, isTTY: boolean | undefined): LogFormat {
  if (flag === undefined || flag === '') return isTTY ? 'pretty' : 'json';
  if (flag !== 'json' && flag !== 'pretty') throw new CliError('CLI_ERR_USAGE', '--log-format must be json or pretty');
  return flag;
}

/**
 * A pino destination that writes each JSON line as one readable line:
 * `12:04:05.120 INFO  deployment finished app=hello version=2 status=succeeded`, with an error's
 * stack indented below it. Lines that are not pino's JSON pass through unchanged.
 */
export function prettyLogStream(out: Writable): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      pending += chunk.toString();
      let end: number;
      let text = '';
      while ((end = pending.indexOf('\n')) !== -1) {
        text += prettyLine(pending.slice(0, end)) + '\n';
        pending = pending.slice(end + 1);
      }
      if (text === '') return callback();
      out.write(text, () => callback());
    },
  });
}

export function prettyLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return line;
    entry = parsed as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const level = (LEVELS[entry.level as number] ?? String(entry.level ?? '')).padEnd(5);
  const fields: string[] = [];
  let stack = '';
  for (const [key, value] of Object.entries(entry)) {
    if (OMITTED.has(key) || value === undefined) continue;
    if (key === 'err' && typeof value === 'object' && value !== null) {
      const err = value as { message?: unknown; stack?: unknown; code?: unknown };
      fields.push(`err=${quoted(String(err.code ? `${String(err.code)}: ${String(err.message)}` : err.message))}`);
      if (typeof err.stack === 'string') stack = err.stack.split('\n').slice(1).map((l) => `    ${l.trim()}`).join('\n');
      continue;
    }
    fields.push(`${key}=${quoted(typeof value === 'string' ? value : JSON.stringify(value))}`);
  }
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  const head = [time, level, msg, ...fields].filter((part) => part !== '').join(' ');
  return stack ? `${head}\n${stack}` : head;
}

function quoted(value: string): string {
  return /^[^\s"=]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
}
