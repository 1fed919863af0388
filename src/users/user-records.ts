import type { ApiToken, Role, User } from '../model/user.ts';

/** A user as stored, with the hash their password is checked against. */
export interface StoredUser extends User {
  passwordHash: string;
}

/** The users, their API tokens and their console sessions, as the user use cases need them. */
export interface UserRecords {
  /** The new user's id; undefined when the address already has an account. */
  insert(user: { email: string; emailKey: string; role: Role; passwordHash: string }, now: Date): Promise<number | undefined>;
  findByKey(emailKey: string): Promise<StoredUser | undefined>;
  findById(id: number): Promise<StoredUser | undefined>;
  list(): Promise<User[]>;
  countAdmins(): Promise<number>;
  /** Removes the user with their tokens and sessions; false when there was none. */
  remove(id: number): Promise<boolean>;
  /** Sets a new hash and ends every session of the user (a reset locks out whoever knew the old password). */
  setPassword(id: number, passwordHash: string, now: Date): Promise<void>;
  setRole(id: number, role: Role): Promise<void>;
  setTimeZone(id: number, zone: string): Promise<void>;
  recordLogin(id: number, now: Date): Promise<void>;
  insertToken(token: { userId: number; name: string; tokenHash: string; prefix: string }, now: Date): Promise<ApiToken>;
  tokens(userId: number): Promise<ApiToken[]>;
  /** The token's owner, and marks the token used; undefined for an unknown hash. */
  userForToken(tokenHash: string, now: Date): Promise<User | undefined>;
  /** False when the user has no such token. */
  removeToken(userId: number, tokenId: number): Promise<boolean>;
}
