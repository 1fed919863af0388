import type { Site } from '../model/content.ts';
import { contrastRatio, fitContrast } from '../render/colour.ts';

export { contrastRatio };

/** The page and box backgrounds site.css uses in each mode (keep in step with it): the accent is fitted to them. */
export const BACKGROUNDS = { light: ['#fbfaf7', '#f3efe8'], dark: ['#161412', '#221f1b'] } as const;

// WCAG AA for body text, with a little room: axe measures the rendered colour, which is rounded to whole channels.
const TARGET_CONTRAST = 4.6;

/** The accent colour fitted to each mode: links readable on the page, button text readable on the button. */
export interface AccentPalette {
  /** Links and focus rings on the light background: the accent, darkened only if it is too light to read. */
  link: string;
  /** The button colour in light mode: the accent as set in site.yaml. */
  button: string;
  /** Text on `button`: black or white, whichever contrasts more (never under 4.58:1). */
  buttonText: string;
  /** Links and buttons on the dark background: the accent, lightened until it reads. */
  linkDark: string;
  /** Text on `linkDark` buttons. */
  buttonTextDark: string;
}

/** Fits site.yaml's theme.accent to the light and dark backgrounds. */
export function accentPalette(accent: Site['theme']['accent']): AccentPalette {
  const button = accent.toLowerCase();
  const link = fitContrast(button, '#000000', BACKGROUNDS.light, TARGET_CONTRAST);
  const linkDark = fitContrast(button, '#ffffff', BACKGROUNDS.dark, TARGET_CONTRAST);
  return { link, button, buttonText: textOn(button), linkDark, buttonTextDark: textOn(linkDark) };
}

/** The CSS custom properties of the palette, for the top of the stylesheet (light first, dark under the media query). */
export function themeCss(theme: Site['theme']): string {
  const p = accentPalette(theme.accent);
  return [
    `:root { --accent: ${p.link}; --button: ${p.button}; --button-text: ${p.buttonText}; }`,
    `@media (prefers-color-scheme: dark) { :root { --accent: ${p.linkDark}; --button: ${p.linkDark}; --button-text: ${p.buttonTextDark}; } }`,
    '',
  ].join('\n');
}

/** Black or white, whichever reads better on `background`. */
function textOn(background: string): string {
  return contrastRatio('#000000', background) >= contrastRatio('#ffffff', background) ? '#000000' : '#ffffff';
}
