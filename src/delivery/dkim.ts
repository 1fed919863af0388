import { readFile } from 'node:fs/promises';
import DKIM from 'nodemailer/lib/dkim';
import { ConfigError } from '../errors.ts';

/** Signs a raw message; identity when DKIM is not configured. */
export type MessageSigner = (raw: string) => Promise<string>;

/** Headers the signature covers: the bulk-sender rules want From and both List-Unsubscribe fields signed. */
const SIGNED_HEADERS =
  'from:sender:reply-to:subject:date:message-id:to:mime-version:content-type:list-id:list-unsubscribe:list-unsubscribe-post';

/** Builds the DKIM signer from DKIM_* settings, reading the key once. */
export async function createMessageSigner(
  dkim: { domain: string; selector: string; privateKeyFile: string } | undefined,
): Promise<MessageSigner> {
  if (!dkim) return async (raw) => raw;
  let privateKey: string;
  try {
    privateKey = await readFile(dkim.privateKeyFile, 'utf8');
  } catch (cause) {
    throw new ConfigError(`DKIM_PRIVATE_KEY_FILE: cannot read ${dkim.privateKeyFile} (${(cause as Error).message})`);
  }
  const signer = new DKIM({
    domainName: dkim.domain,
    keySelector: dkim.selector,
    privateKey,
    headerFieldNames: SIGNED_HEADERS,
  });
  return async (raw) => {
    const chunks: Buffer[] = [];
    for await (const chunk of signer.sign(raw)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
}
