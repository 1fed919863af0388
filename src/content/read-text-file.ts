import { isUtf8 } from 'node:buffer';
import { constants, type Stats } from 'node:fs';
import { open, readlink, stat } from 'node:fs/promises';

/** Largest content file read, in bytes (5 MB): stories are a few KB, so anything bigger is a mistake or an attack. */
export const MAX_TEXT_FILE_BYTES = 5 * 1024 * 1024;

/** Why a file could not be read as text: one phrase for the editor, and the line to blame when there is one. */
export interface UnreadableFile {
  problem: string;
  line?: number;
  /** Nothing is at that path (not even a broken symlink), so the caller may say what it expected there. */
  missing: boolean;
}

/** Options of readTextFile. */
export interface ReadTextFileOptions {
  /** What the file should be, for the message when it is a folder or a device, like "a Markdown file". */
  expected: string;
  /** Files larger than this are refused unread; default MAX_TEXT_FILE_BYTES. */
  maxBytes?: number;
}

/**
 * Reads a file as UTF-8 text without trusting it: never throws, never blocks on a named pipe, never reads
 * more than `maxBytes`, and refuses folders, devices, binary files and invalid UTF-8.
 */
export async function readTextFile(file: string, options: ReadTextFileOptions): Promise<string | UnreadableFile> {
  const maxBytes = options.maxBytes ?? MAX_TEXT_FILE_BYTES;
  try {
    // Checked before opening, so a device is never opened at all.
    const kind = notRegular(await stat(file));
    if (kind) return unreadable(`is ${kind}, expected ${options.expected}`);
    const bytes = await readAtMost(file, maxBytes, options.expected);
    return 'problem' in bytes ? bytes : decodeUtf8(bytes);
  } catch (error) {
    return describeFsError(file, error);
  }
}

/** Describes a failed file-system call on a content path in one phrase: "is a symlink loop", "permission denied"… */
export async function describeFsError(file: string, error: unknown): Promise<UnreadableFile> {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': {
      const target = await readlink(file).catch(() => undefined);
      return target === undefined
        ? { problem: 'does not exist', missing: true }
        : unreadable(`is a broken symlink (it points to ${target}, which does not exist)`);
    }
    case 'ENOTDIR':
      return { problem: 'does not exist (a part of its path is a file, not a folder)', missing: true };
    case 'ELOOP':
      return unreadable('is a symlink loop (following its links never reaches a file)');
    case 'EACCES':
    case 'EPERM':
      return unreadable('cannot be read: permission denied');
    case 'ENAMETOOLONG':
      return unreadable('has a name too long for the file system');
    case 'EISDIR':
      return unreadable('is a directory');
    default:
      return unreadable(`cannot be read (${code ?? (error instanceof Error ? error.message : String(error))})`);
  }
}

/** Reads the whole file, or says why not when it turns out not to be a regular file or holds over `maxBytes`. */
async function readAtMost(file: string, maxBytes: number, expected: string): Promise<Buffer | UnreadableFile> {
  // O_NONBLOCK: a file swapped for a named pipe since stat() must not block the open forever.
  const handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    const kind = notRegular(info);
    if (kind) return unreadable(`is ${kind}, expected ${expected}`);
    if (info.size > maxBytes) return unreadable(tooLarge(info.size, maxBytes));
    // Read in a loop bounded by maxBytes, not by the size stat() gave: the file may grow meanwhile.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(info.size + 1, 64 * 1024), maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) return unreadable(tooLarge(total, maxBytes));
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}

function decodeUtf8(bytes: Buffer): string | UnreadableFile {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return unreadable('is UTF-16 text: save it as UTF-8', 1);
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) return unreadable('contains a NUL byte: expected UTF-8 text, not a binary file', lineAt(bytes, nul));
  if (!isUtf8(bytes)) {
    return unreadable('is not valid UTF-8 (a binary file, or text in another encoding such as Latin-1): save it as UTF-8', firstInvalidLine(bytes));
  }
  return bytes.toString('utf8');
}

function notRegular(info: Stats): string | undefined {
  if (info.isFile()) return undefined;
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a named pipe';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function tooLarge(size: number, maxBytes: number): string {
  // Rounded up, so a file just over the limit never reads as "5 MB; at most 5 MB".
  const mb = (bytes: number) => `${Math.ceil((bytes / 1024 / 1024) * 10) / 10} MB`;
  return `is too large (${mb(size)}; at most ${mb(maxBytes)} is allowed)`;
}

function unreadable(problem: string, line?: number): UnreadableFile {
  return line === undefined ? { problem, missing: false } : { problem, line, missing: false };
}

function lineAt(bytes: Buffer, offset: number): number {
  let line = 1;
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < offset; i = bytes.indexOf(0x0a, i + 1)) line++;
  return line;
}

function firstInvalidLine(bytes: Buffer): number {
  // A newline byte never occurs inside a multi-byte UTF-8 sequence, so lines can be checked one by one.
  let line = 1;
  for (let start = 0; start < bytes.length; line++) {
    const end = bytes.indexOf(0x0a, start);
    const stop = end === -1 ? bytes.length : end;
    if (!isUtf8(bytes.subarray(start, stop))) return line;
    start = stop + 1;
  }
  return line;
}
