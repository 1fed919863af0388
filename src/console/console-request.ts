import type { FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError, InputError } from '../errors.ts';
import type { User } from '../model/user.ts';
import type { ConsoleViews, PageFrame } from './console-views.ts';

declare module 'fastify' {
  interface Session {
    userId?: number;
    /** When the user signed in (epoch ms): a session older than their last password change opens nothing. */
    signedInAt?: number;
    _csrf?: string;
    /** One notice shown on the next page (after a redirect), then dropped. */
    flash?: { tone: 'ok' | 'error'; text: string };
  }
  interface FastifyRequest {
    /** The signed-in console user; set by the console's gate on every page but the login page. */
    consoleUser?: User;
  }
}

/** A form body as @fastify/formbody parses it. */
export type Form = Record<string, string | string[] | undefined>;

/** What the console's route modules share. */
export interface ConsoleKit {
  views: ConsoleViews;
  siteTitle(): Promise<string>;
  /** Renders a console page for the signed-in user, with the CSRF token its forms carry. */
  page(request: FastifyRequest, reply: FastifyReply, page: string, frame: { title: string; section?: string }, context?: Record<string, unknown>, status?: number): Promise<FastifyReply>;
  /** Redirects (303) after a form, with a notice for the next page. */
  redirect(request: FastifyRequest, reply: FastifyReply, to: string, flash?: { tone: 'ok' | 'error'; text: string }): FastifyReply;
}

/** The signed-in user; only routes behind the gate call it. */
export function userOf(request: FastifyRequest): User {
  const user = request.consoleUser;
  if (!user) throw new Error('userOf: the console gate did not run for this route');
  return user;
}

/** Refuses (403) anyone but an admin. */
export function requireAdmin(request: FastifyRequest, what: string): User {
  const user = userOf(request);
  if (user.role !== 'admin') throw new ForbiddenError(`only an admin can ${what}: you are signed in as an editor`);
  return user;
}

/** One text field of a form; a field sent twice is refused. */
export function field(form: Form | undefined, name: string): string | undefined {
  const value = form?.[name];
  if (Array.isArray(value)) throw new InputError(`${name}: given more than once`);
  return value;
}

/** Every value of a repeated field (checkboxes), in order. */
export function fields(form: Form | undefined, name: string): string[] {
  const value = form?.[name];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** A positive whole number in a URL; NotFound-like InputError otherwise. */
export function idParam(text: string, what: string): number {
  // Below 2^31: ids are 32-bit integers in Postgres, and a larger one would be a database error, not a 404.
  if (!/^[1-9][0-9]{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) throw new InputError(`${what}: expected a positive whole number below 2147483648, got "${text.slice(0, 40)}"`);
  return Number(text);
}

/** Whether the request's session is still a signed-in one: in the store (not signed out), and its user still there. */
export async function stillSignedIn(request: FastifyRequest, findUser: (id: number) => Promise<unknown>): Promise<boolean> {
  const { userId, sessionId } = request.session;
  if (userId === undefined) return false;
  const stored = await new Promise<unknown>((resolve, reject) => request.sessionStore.get(sessionId, (error, session) => (error ? reject(error as Error) : resolve(session))));
  return stored !== null && stored !== undefined && (await findUser(userId)) !== undefined;
}

/** The zone the user sees times in: their own, else UTC. */
export function zoneOf(request: FastifyRequest): string {
  return request.consoleUser?.timeZone ?? 'UTC';
}

/** The frame fields of a page for this request. */
export function frameFor(request: FastifyRequest, csrf: string | undefined, siteTitle: string, title: string, section?: string): PageFrame {
  const user = request.consoleUser;
  const flash = request.session?.flash;
  if (flash) delete request.session.flash;
  return {
    title,
    section,
    siteTitle,
    csrf,
    flash,
    user: user && { email: user.email, role: user.role, isAdmin: user.role === 'admin', timeZone: user.timeZone ?? 'UTC' },
  };
}
