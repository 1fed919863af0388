/**
 * An object whose every method loads its module on first call: for use cases whose modules are
 * heavy (Markdown, sanitizing, MJML) and that a process may never need (a worker sends, it does
 * not write editions). Only for objects whose methods all return promises.
 */
export function lazyMethods<T extends object>(load: () => Promise<T>): T {
  let loaded: Promise<T> | undefined;
  const get = () => (loaded ??= load());
  return new Proxy({} as T, {
    get: (_target, name) => async (...args: unknown[]) => {
      const target = await get();
      const method = target[name as keyof T];
      if (typeof method !== 'function') throw new TypeError(`no method ${String(name)}`);
      return (method as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
}

/** A function that loads its module on first call. */
export function lazyFunction<A extends unknown[], R>(load: () => Promise<(...args: A) => Promise<R>>): (...args: A) => Promise<R> {
  let loaded: Promise<(...args: A) => Promise<R>> | undefined;
  return async (...args: A) => (await (loaded ??= load()))(...args);
}
