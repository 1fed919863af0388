import { describe, expect, it } from 'vitest';
import { cleanText } from '../../src/feed/clean-text.ts';
import { imageType } from '../../src/feed/image-type.ts';

describe('cleanText', () => {
  it('drops C0 controls but keeps tab, newline and carriage return', () => {
    expect(cleanText('a\u0000b\u0008c\u000Bd\u000Ce\u001Ff\tg\nh\ri')).toBe('abcdef\tg\nh\ri');
  });

  it('keeps emoji and Cyrillic, drops unpaired surrogates and U+FFFE/U+FFFF', () => {
    expect(cleanText('🎉 Привіт')).toBe('🎉 Привіт');
    expect(cleanText('x\uD83Dy\uDE00z\uFFFE\uFFFF')).toBe('xyz');
  });
});

describe('imageType', () => {
  it('guesses from the URL path extension, ignoring case and query', () => {
    expect(imageType('https://img.example.org/a.jpg')).toBe('image/jpeg');
    expect(imageType('https://img.example.org/a.JPEG?w=10')).toBe('image/jpeg');
    expect(imageType('https://img.example.org/a.png#x')).toBe('image/png');
    expect(imageType('https://img.example.org/a.webp')).toBe('image/webp');
    expect(imageType('https://img.example.org/a.gif')).toBe('image/gif');
  });

  it('falls back to a generic type when the extension says nothing', () => {
    expect(imageType('https://img.example.org/image?id=3.png')).toBe('application/octet-stream');
    expect(imageType('https://img.example.org/photo')).toBe('application/octet-stream');
  });
});
