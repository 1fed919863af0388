import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

describe('loadConfig', () => {
  it('refuses an admin token shorter than 32 characters, naming the key and not echoing the secret', () => {
    const error = (() => {
      try {
        loadConfig({ GAZETTE_ADMIN_TOKEN: 'short-but-secret' });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/GAZETTE_ADMIN_TOKEN: expected at least 32 characters .*\(got 16 characters\)/);
    expect((error as Error).message).not.toContain('short-but-secret');
    expect(loadConfig({ GAZETTE_ADMIN_TOKEN: 'x'.repeat(32) }).adminToken).toBe('x'.repeat(32));
  });

  it('hides the password of an SMTP_URL it refuses', () => {
    expect(() => loadConfig({ SMTP_URL: 'ftp://user:hunter2@mail.example.org' })).toThrow(/SMTP_URL: .*ftp:\/\/user:\*\*\*@mail\.example\.org/);
    expect(() => loadConfig({ SMTP_URL: 'ftp://user:hunter2@mail.example.org' })).not.toThrow(/hunter2/);
  });

  it('leases default to a minute and must be at least 2 s', () => {
    expect(loadConfig({}).leaseMs).toBe(60_000);
    expect(() => loadConfig({ GAZETTE_LEASE_SECONDS: '1' })).toThrow(/GAZETTE_LEASE_SECONDS/);
  });

  it('takes REDIS_URL (redis:// or rediss://) for the BullMQ queue, with a key prefix; a wrong one is named with its password hidden', () => {
    expect(loadConfig({})).toMatchObject({ redisUrl: undefined, redisPrefix: 'gazette' });
    expect(loadConfig({ REDIS_URL: 'rediss://:pw@redis.internal:6380/2', GAZETTE_REDIS_PREFIX: 'news-1' })).toMatchObject({ redisUrl: 'rediss://:pw@redis.internal:6380/2', redisPrefix: 'news-1' });
    expect(() => loadConfig({ REDIS_URL: 'http://:hunter2@redis.internal' })).toThrow(/REDIS_URL: expected a URL starting with redis:\/\/ or rediss:\/\/ \(got "http:\/\/:\*\*\*@redis\.internal"\)/);
    expect(() => loadConfig({ GAZETTE_REDIS_PREFIX: 'a b' })).toThrow(/GAZETTE_REDIS_PREFIX: expected 1 to 64 letters/);
  });
});
