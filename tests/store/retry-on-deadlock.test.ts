import { describe, expect, it } from 'vitest';
import { retryOnDeadlock } from '../../src/store/retry-on-deadlock.ts';

const deadlock = () => Object.assign(new Error('deadlock detected'), { code: '40P01' });

describe('retryOnDeadlock', () => {
  it('runs a transaction Postgres aborted for a deadlock again, until it goes through', async () => {
    let runs = 0;
    const result = await retryOnDeadlock(async () => {
      if (++runs < 3) throw deadlock();
      return 'written';
    });
    expect(result).toBe('written');
    expect(runs).toBe(3);
  });

  it('gives up after its attempts, and never retries any other error', async () => {
    let runs = 0;
    await expect(retryOnDeadlock(async () => { runs++; throw deadlock(); }, 3)).rejects.toThrow('deadlock detected');
    expect(runs).toBe(3);
    runs = 0;
    await expect(retryOnDeadlock(async () => { runs++; throw Object.assign(new Error('unique violation'), { code: '23505' }); })).rejects.toThrow('unique violation');
    expect(runs).toBe(1);
  });
});
