import { describe, expect, it } from 'vitest';
import { MAX_DISPLAY_NAME_LENGTH, parseDisplayName } from '../../src/subscribers/display-name.ts';

describe('parseDisplayName', () => {
  it('treats a missing or empty name as none', () => {
    expect(parseDisplayName(undefined)).toBeNull();
    expect(parseDisplayName(null)).toBeNull();
    expect(parseDisplayName('')).toBeNull();
    expect(parseDisplayName('   ')).toBeNull();
    expect(parseDisplayName('\u00a0\u3000 ')).toBeNull();
  });

  it('refuses what is not text', () => {
    for (const input of [42, true, {}, ['Ann'], Symbol('x')]) expect(parseDisplayName(input)).toEqual({ error: 'name: expected text' });
  });

  it('keeps a name as given, trimmed, specials and all', () => {
    expect(parseDisplayName('  Ann  ')).toBe('Ann');
    expect(parseDisplayName('Zoë “Z” Ünal')).toBe('Zoë “Z” Ünal');
    // The bug report's name is a legitimate (if odd) name: the To: header is what must cope.
    const hostile = 'Ü, attacker@evil.example, Mallory <mallory@evil.example>, Bob';
    expect(parseDisplayName(hostile)).toBe(hostile);
    expect(parseDisplayName('O\'Brien, "Pat" \\ Co.')).toBe('O\'Brien, "Pat" \\ Co.');
    expect(parseDisplayName('Олена 🎉')).toBe('Олена 🎉');
  });

  it('refuses control characters, naming the first and its position (1-based, in characters)', () => {
    expect(parseDisplayName('ab\u000bc')).toEqual({ error: 'name: must not contain control characters (found U+000B at position 3)' });
    expect(parseDisplayName('\u0000')).toEqual({ error: 'name: must not contain control characters (found U+0000 at position 1)' });
    // An emoji before it counts as one character, not two UTF-16 units.
    expect(parseDisplayName('🎉\u000c')).toEqual({ error: 'name: must not contain control characters (found U+000C at position 2)' });
    const cases: [string, string][] = [
      ['Ann\r\nBcc: x@evil.example', 'U+000D'],
      ['Ann\nBob', 'U+000A'],
      ['Ann\tBob', 'U+0009'],
      ['Ann\u007f', 'U+007F'],
      ['Ann\u0085', 'U+0085'],
      ['Ann\u009f', 'U+009F'],
      ['Ann\u2028Bob', 'U+2028'],
      ['Ann\u2029Bob', 'U+2029'],
      // Even where trimming would have removed it: a control character is a sign of bad input.
      [' Ann\n', 'U+000A'],
    ];
    for (const [input, found] of cases) {
      const result = parseDisplayName(input);
      expect(result, JSON.stringify(input)).toMatchObject({ error: expect.stringContaining(`(found ${found} at position `) });
    }
  });

  it('refuses a lone surrogate, which is not text', () => {
    expect(parseDisplayName('Ann \ud83c')).toEqual({ error: 'name: must be valid text (found a lone surrogate at position 5)' });
    expect(parseDisplayName('\udf89x')).toEqual({ error: 'name: must be valid text (found a lone surrogate at position 1)' });
  });

  it('allows at most 100 characters after trimming, counting code points', () => {
    expect(MAX_DISPLAY_NAME_LENGTH).toBe(100);
    expect(parseDisplayName('a'.repeat(100))).toBe('a'.repeat(100));
    expect(parseDisplayName(` ${'a'.repeat(100)} `)).toBe('a'.repeat(100));
    expect(parseDisplayName('a'.repeat(101))).toEqual({ error: 'name: at most 100 characters (got 101)' });
    // 100 emoji are 200 UTF-16 units and still 100 characters.
    expect(parseDisplayName('🎉'.repeat(100))).toBe('🎉'.repeat(100));
    expect(parseDisplayName('🎉'.repeat(101))).toEqual({ error: 'name: at most 100 characters (got 101)' });
  });
});
