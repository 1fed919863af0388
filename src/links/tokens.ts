import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';

/** What a token lets its bearer do. */
export type TokenPurpose = 'confirm' | 'unsubscribe' | 'preferences';

const PURPOSE_CODES: Record<TokenPurpose, string> = { confirm: 'c', unsubscribe: 'u', preferences: 'p' };
const CODE_PURPOSES = new Map(Object.entries(PURPOSE_CODES).map(([purpose, code]) => [code, purpose as TokenPurpose]));

/** Why a token was refused. */
export type TokenProblem = 'malformed' | 'bad-signature' | 'wrong-purpose' | 'expired';

/** The outcome of checking a token. */
export type TokenCheck =
  | { ok: true; subscriberId: number; expiresAt: Date | undefined }
  | { ok: false; problem: TokenProblem };

/** Signs and checks HMAC-SHA256 tokens over (subscriber, purpose, expiry). */
export class TokenSigner {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  /** A URL-safe token; `expiresAt` undefined means it never expires (unsubscribe links must keep working). */
  sign(subscriberId: number, purpose: TokenPurpose, expiresAt?: Date): string {
    const expiry = expiresAt ? Math.floor(expiresAt.getTime() / 1000).toString(36) : '0';
    const payload = `${subscriberId.toString(36)}.${PURPOSE_CODES[purpose]}.${expiry}`;
    return `${payload}.${this.mac(payload)}`;
  }

  /** Checks a token for a purpose at `now`, comparing signatures in constant time. */
  verify(token: string, purpose: TokenPurpose, now: Date): TokenCheck {
    const match = /^([0-9a-z]{1,11})\.([cup])\.([0-9a-z]{1,9})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!match) return { ok: false, problem: 'malformed' };
    const [, id, code, expiry, mac] = match as unknown as [string, string, string, string, string];
    const expected = Buffer.from(this.mac(`${id}.${code}.${expiry}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, problem: 'bad-signature' };
    if (CODE_PURPOSES.get(code) !== purpose) return { ok: false, problem: 'wrong-purpose' };
    const expiresSeconds = parseInt(expiry, 36);
    if (expiresSeconds !== 0 && expiresSeconds * 1000 < now.getTime()) return { ok: false, problem: 'expired' };
    return {
      ok: true,
      subscriberId: parseInt(id, 36),
      expiresAt: expiresSeconds === 0 ? undefined : new Date(expiresSeconds * 1000),
    };
  }

  /** A key of its own for another use of the secret (the console's session cookies), so no two uses share one. */
  derive(use: string): string {
    return this.mac(`derive:${use}`);
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

/** The configured secret, or the one generated once into `<dataDir>/secret` (created on first use). */
export async function resolveSecret(configured: string | undefined, dataDir: string): Promise<string> {
  if (configured) return configured;
  const file = path.join(dataDir, 'secret');
  try {
    const stored = (await readFile(file, 'utf8')).trim();
    if (stored.length >= 32) return stored;
  } catch {
    // No secret yet: generate one below.
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${secret}\n`, { mode: 0o600 });
  await rename(temp, file);
  return secret;
}
