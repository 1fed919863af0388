import { hash, verify } from '@node-rs/argon2';
import { InputError } from '../errors.ts';

/** Shortest password a user may set. */
export const MIN_PASSWORD_LENGTH = 12;
/** Longest: argon2 takes any length, but a megabyte "password" is a way to make the server work. */
export const MAX_PASSWORD_LENGTH = 1024;

// OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): tens of milliseconds a check, slow enough for guessing, fast enough for a login.
// `algorithm: 2` is Algorithm.Argon2id: the package exports it as a const enum, which isolated modules cannot import.
const OPTIONS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Refuses a password that is too short or too long, naming the rule; returns it as given. */
export function checkPassword(password: string): string {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) throw new InputError(`password: at least ${MIN_PASSWORD_LENGTH} characters (got ${length})`);
  if (length > MAX_PASSWORD_LENGTH) throw new InputError(`password: at most ${MAX_PASSWORD_LENGTH} characters (got ${length})`);
  return password;
}

/** The argon2id hash of a password that passes checkPassword, as a PHC string. */
export async function hashPassword(password: string): Promise<string> {
  return hash(checkPassword(password), OPTIONS);
}

// Checked against when the address has no account, so an unknown address takes as long as a wrong password.
let decoy: Promise<string> | undefined;

/** Whether `password` matches `stored`; with no stored hash, spends the same time and says no. */
export async function passwordMatches(stored: string | undefined, password: string): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH * 4) return false;
  const against = stored ?? (await (decoy ??= hash('decoy password for unknown accounts', OPTIONS)));
  try {
    const ok = await verify(against, password);
    return stored !== undefined && ok;
  } catch {
    // A hash that is not a PHC string matches nothing.
    return false;
  }
}
