import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { ObjectStore } from '@nats-io/obj';
import { HotError } from '../errors.js';
import type { ReleaseRef } from './protocol.js';

/** `<app>/<sha256>.tgz`: the same bytes are stored once, whatever versions name them. */
export function objectName(app: string, sha256: string): string {
  return `${app}/${sha256}.tgz`;
}

/** `<app>/deltas/<sha256>.tgz`: a release's delta against its base, as it was uploaded. */
export function deltaObjectName(app: string, sha256: string): string {
  return `${app}/deltas/${sha256}.tgz`;
}

/** `<app>/node_modules/<install key>.tgz`: one installed node_modules, whatever releases share it. */
export function nodeModulesObjectName(app: string, key: string): string {
  return `${app}/node_modules/${key}.tgz`;
}

/** Service side: stores the bundle unless the object store already holds it. */
export async function publishBundle(store: ObjectStore, ref: Pick<ReleaseRef, 'object'>, file: string): Promise<void> {
  if (await store.info(ref.object)) return;
  await store.put({ name: ref.object }, Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>);
}

/**
 * Host side: writes the bundle (or an installed node_modules, any object with its sha256) to `file`
 * and checks it twice: the object store's own digest (its `error` promise) and the sha256 the
 * service recorded, so a replaced object is refused.
 */
export async function pullBundle(store: ObjectStore, ref: Pick<ReleaseRef, 'object' | 'sha256'>, file: string): Promise<void> {
  const result = await store.get(ref.object);
  if (result === null) throw new HotError('HOT_ERR_BUNDLE_MISSING', ref.object);
  const hash = createHash('sha256');
  const input = Readable.fromWeb(result.data as WebReadableStream<Uint8Array>);
  const out = createWriteStream(file);
  input.on('data', (chunk: Buffer) => hash.update(chunk));
  await pipeline(input, out);
  const storeError = await result.error;
  if (storeError) throw new HotError('HOT_ERR_BUNDLE_DIGEST', `${ref.object}: ${storeError.message}`);
  const actual = hash.digest('hex');
  if (actual !== ref.sha256) throw new HotError('HOT_ERR_BUNDLE_DIGEST', `${ref.object} is ${actual}, expected ${ref.sha256}`);
}
