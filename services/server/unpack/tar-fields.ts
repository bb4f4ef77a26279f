/**
 * The fields of a tar header block (512 bytes) and of a pax extended header's body, decoded straight
 * from the bytes for tar-reader.ts: no `subarray`, regular expression or `parseInt` per field.
 */
import { DeployError } from '../errors.js';

const BLOCK = 512;

/** Fields a pax header (or a GNU long name) sets for the entries it applies to. */
export interface Extended {
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: Date;
  mode?: number;
}

/** ustar's name: the 155-byte prefix, when the magic says there is one, then the 100-byte name. */
export function fullName(buf: Buffer, off: number): string {
  const name = string(buf, off, 100);
  if (!isUstar(buf, off)) return name;
  // star's variant keeps atime and ctime in the prefix's last 25 bytes (node-tar reads it so).
  const prefix = string(buf, off + 345, buf[off + 475] !== 0 ? 155 : 130);
  return prefix === '' ? name : `${prefix}/${name}`;
}

/** POSIX ustar: "ustar\0" then version "00" (GNU's "ustar  \0" has no prefix field). */
function isUstar(buf: Buffer, off: number): boolean {
  const m = off + 257;
  return buf[m] === 0x75 && buf[m + 1] === 0x73 && buf[m + 2] === 0x74 && buf[m + 3] === 0x61 && buf[m + 4] === 0x72
    && buf[m + 5] === 0 && buf[m + 6] === 0x30 && buf[m + 7] === 0x30;
}

export function isZero(buf: Buffer, off: number): boolean {
  for (let i = off; i < off + BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The header's sum with its checksum field counted as spaces (unsigned bytes, as POSIX says). */
export function checksum(buf: Buffer, off: number): number {
  let sum = 8 * 0x20;
  for (let i = off; i < off + 148; i++) sum += buf[i] as number;
  for (let i = off + 156; i < off + BLOCK; i++) sum += buf[i] as number;
  return sum;
}

/** A NUL-terminated UTF-8 field. */
export function string(buf: Buffer, off: number, size: number): string {
  return cString(buf, off, off + size);
}

/** The bytes up to the first NUL before `end`, as UTF-8. */
export function cString(buf: Buffer, start: number, end: number): string {
  // Not `buf.indexOf(0, start)`: a full field has no NUL, and the search would run on through the
  // rest of the block (1 MiB), for every field of every header an archive could fill so.
  let nul = start;
  while (nul < end && buf[nul] !== 0) nul++;
  return buf.toString('utf8', start, nul);
}

/**
 * A numeric field: octal digits (leading spaces, ended by a space or NUL), or base-256 when the
 * first byte's high bit is set (0x80: positive; 0xff: negative). undefined when it holds no number.
 */
export function number(buf: Buffer, off: number, size: number): number | undefined {
  const first = buf[off] as number;
  if (first & 0x80) return base256(buf, off, size);
  let i = off;
  const end = off + size;
  while (i < end && buf[i] === 0x20) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i] as number;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? undefined : value;
}

function base256(buf: Buffer, off: number, size: number): number {
  const first = buf[off] as number;
  if (first !== 0x80 && first !== 0xff) throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', 'a tar header has an invalid base-256 number');
  let value = 0;
  for (let i = off + 1; i < off + size; i++) value = value * 256 + (first === 0xff ? 0xff - (buf[i] as number) : (buf[i] as number));
  if (first === 0xff) value = -(value + 1);
  if (!Number.isSafeInteger(value)) throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', 'a tar header has a number out of range');
  return value;
}

/** pax records, `<length> <key>=<value>\n`; a record whose length does not match is skipped (node-tar too). */
export function parsePax(body: Buffer): Extended {
  const out: Extended = {};
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(body.toString('latin1', at, space));
    if (!Number.isInteger(length) || length <= space - at + 1 || at + length > body.length) break;
    const record = body.toString('utf8', space + 1, at + length - 1);
    at += length;
    if (body[at - 1] !== 0x0a) continue;
    const eq = record.indexOf('=');
    if (eq <= 0) continue;
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    // A NUL ends a path, as in a header field (node-tar cuts it there too).
    if (key === 'path' || key === 'linkpath') out[key] = value.split('\0', 1)[0] as string;
    else if (key === 'size' || key === 'mode') {
      const n = Number(value);
      if (value !== '' && Number.isSafeInteger(n) && n >= 0) out[key] = n;
      else throw new DeployError('DEPLOY_ERR_BAD_ARCHIVE', `a pax header's ${key} is ${JSON.stringify(value)}`);
    } else if (key === 'mtime') {
      const seconds = Number(value);
      if (value !== '' && Number.isFinite(seconds)) out.mtime = new Date(seconds * 1000);
    }
  }
  return out;
}
