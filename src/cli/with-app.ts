import type { App } from '../app.ts';
import type { AppFactory } from './main.ts';

/** Wraps a command action so it gets a fresh App that is closed however the action ends. */
export function withApp<A extends unknown[]>(makeApp: AppFactory, fn: (app: App, ...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const app = makeApp();
    try {
      await fn(app, ...args);
    } finally {
      await app.close();
    }
  };
}

/** Runs `fn` with a fresh App and closes it afterwards. */
export function runWithApp(makeApp: AppFactory, fn: (app: App) => Promise<void>): Promise<void> {
  return withApp(makeApp, fn)();
}
