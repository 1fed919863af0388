/** What a console user may do: editors handle content, editions and schedules; admins also users, settings and erasure. */
export type Role = 'editor' | 'admin';

export const ROLES: readonly Role[] = ['editor', 'admin'];

/** Someone who signs in to the console or calls the admin API with a token of their own. Timestamps are ISO 8601 UTC. */
export interface User {
  id: number;
  email: string;
  role: Role;
  createdAt: string;
  /** When the password was last set (added, or reset). */
  passwordChangedAt: string;
  lastLoginAt: string | null;
  /** IANA zone the console shows this user's times in; undefined until chosen (the browser's is taken at login). */
  timeZone: string | undefined;
}

/** A user's API token as listings show it: never the token itself, which is shown once when made. */
export interface ApiToken {
  id: number;
  userId: number;
  name: string;
  /** The first characters of the token, so its owner can tell tokens apart. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** Who is calling: a console user, or the operator's GAZETTE_ADMIN_TOKEN (an admin with no account). */
export interface Actor {
  user: User | undefined;
  role: Role;
  /** For logs and audit lines: the user's address, or "GAZETTE_ADMIN_TOKEN". */
  name: string;
}
