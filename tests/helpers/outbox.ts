import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';

/** One message found in data/outbox/. */
export interface OutboxMessage {
  file: string;
  raw: string;
  parsed: ParsedMail;
}

/** Every .eml in `<dataDir>/outbox`, parsed, oldest file name first. */
export async function readOutbox(dataDir: string): Promise<OutboxMessage[]> {
  const dir = path.join(dataDir, 'outbox');
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.eml')).sort();
  return Promise.all(
    names.map(async (name) => {
      const raw = await readFile(path.join(dir, name), 'utf8');
      return { file: path.join(dir, name), raw, parsed: await simpleParser(raw) };
    }),
  );
}

/** The first https link in a message's text part whose path starts with `pathPrefix`. */
export function linkIn(message: OutboxMessage, pathPrefix: string): string {
  const links = (message.parsed.text ?? '').match(/https?:\/\/[^\s<>"]+/g) ?? [];
  const link = links.find((l) => new URL(l).pathname.startsWith(pathPrefix));
  if (!link) throw new Error(`no ${pathPrefix} link in ${message.file}`);
  return link;
}
