import { createHash } from 'node:crypto';
import type { Session } from 'fastify';
import type { SessionStore } from '@fastify/session';

/** Console sessions as stored: by a hash of their id, with their data as JSON and an idle expiry. */
export interface SessionRecords {
  save(idHash: string, userId: number | null, data: string, expiresAt: Date): Promise<void>;
  /** The data of a session that has not lapsed by `now`. */
  load(idHash: string, now: Date): Promise<string | undefined>;
  destroy(idHash: string): Promise<void>;
  /** Removes lapsed sessions; how many. */
  prune(now: Date): Promise<number>;
}

/** How long a session nobody signed in to is kept: long enough to fill in the sign-in form. */
export const ANONYMOUS_IDLE_MS = 30 * 60_000;

type Callback<T> = (error: Error | null, value?: T) => void;

/**
 * @fastify/session's store over SessionRecords. Idle expiry is decided here, by the app's clock: every
 * save (each request, the session being rolling) pushes it `idleMs` ahead, and a lapsed session loads as none.
 */
export function sessionStore(records: () => Promise<SessionRecords>, options: { idleMs: number; now: () => Date }): SessionStore {
  let saves = 0;
  const hashOf = (id: string) => createHash('sha256').update(id).digest('hex');
  const settle = <T>(work: Promise<T>, callback: Callback<T>) => {
    work.then(
      (value) => callback(null, value),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  };
  return {
    set(sessionId, session, callback) {
      settle(
        (async () => {
          const store = await records();
          const now = options.now();
          const userId = (session as { userId?: unknown }).userId;
          const signedIn = typeof userId === 'number';
          // A visitor who only opened the sign-in page needs their CSRF secret for minutes, not for 12 hours.
          const idleMs = signedIn ? options.idleMs : Math.min(options.idleMs, ANONYMOUS_IDLE_MS);
          await store.save(hashOf(sessionId), signedIn ? userId : null, JSON.stringify(session), new Date(now.getTime() + idleMs));
          // Now and then, not on every request: lapsed sessions cost only disk until then.
          if (++saves % 200 === 1) await store.prune(now);
        })(),
        callback,
      );
    },
    get(sessionId, callback) {
      settle(
        (async () => {
          const data = await (await records()).load(hashOf(sessionId), options.now());
          return data === undefined ? null : (JSON.parse(data) as Session);
        })(),
        callback,
      );
    },
    destroy(sessionId, callback) {
      settle((async () => (await records()).destroy(hashOf(sessionId)))(), callback);
    },
  };
}
