/** Exhaustiveness: a new kind added to a union fails to compile where it is not handled. */
export function assertNever(value: never): never {
  throw new Error(`unhandled kind ${JSON.stringify(value)}`);
}

/** A plain object (not null, not an array): the first check on any value read off a wire or a file. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
