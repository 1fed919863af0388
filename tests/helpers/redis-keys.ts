import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** A key prefix of one test run's own, e.g. `gz-test-3f9a1c07`: nothing else in Redis starts with it. */
export function testPrefix(): string {
  return `gz-test-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key that starts with `prefix:` (SCAN, so a busy Redis is never blocked); returns how many. */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  if (!/^gz-test-[0-9a-f]+$/.test(prefix)) throw new Error(`refusing to delete keys of ${prefix}: not a test prefix`);
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  return deleted;
}
