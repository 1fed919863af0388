import type { Site } from '../model/content.ts';
import { contrastRatio, fitContrast } from './colour.ts';

/** WCAG AA for body text: what every text colour of an email keeps against what it sits on. */
export const MIN_CONTRAST = 4.5;

// A little over the minimum: checkers round luminance differently, and 4.49 fails.
const TARGET = MIN_CONTRAST + 0.1;

/**
 * Every colour an email is drawn in, light and dark, with the site's accent made safe for text:
 * the templates name these and hold no colour of their own.
 */
export interface EmailPalette {
  /** The site's accent as site.yaml gives it: the masthead and footer rules. */
  accent: string;
  canvas: string;
  paper: string;
  text: string;
  muted: string;
  line: string;
  quote: string;
  quoteRule: string;
  codeBackground: string;
  /** Links: the accent, darkened until it reads on the paper and the canvas. */
  link: string;
  /** Buttons: the accent with white or dark text, else the link colour with white text. */
  button: string;
  buttonText: string;
  darkCanvas: string;
  darkPaper: string;
  darkText: string;
  darkMuted: string;
  darkLine: string;
  darkQuote: string;
  darkQuoteRule: string;
  darkCodeBackground: string;
  /** Links in dark mode: the accent, lightened until it reads on the dark paper and canvas. */
  darkLink: string;
  darkButton: string;
  darkButtonText: string;
}

// The fixed colours, the same as the site's pages; each text colour reads on both backgrounds of its mode.
const LIGHT = {
  canvas: '#f4f1ea',
  paper: '#ffffff',
  text: '#1f2328',
  muted: '#5c554b',
  line: '#e6e0d4',
  quote: '#444444',
  quoteRule: '#d0c9b8',
  codeBackground: '#f6f3ec',
};
const DARK = {
  darkCanvas: '#121314',
  darkPaper: '#1d1e21',
  darkText: '#ebe7e0',
  darkMuted: '#b8b0a4',
  darkLine: '#3b3c41',
  darkQuote: '#cfc8bd',
  darkQuoteRule: '#57534c',
  darkCodeBackground: '#2a2b2f',
};

/** The palette of a site's emails, from its theme's accent. */
export function emailPalette(theme: Site['theme']): EmailPalette {
  const accent = theme.accent.toLowerCase();
  // Links sit on the paper and on the canvas (the header's "view in browser"); the canvas is the darker.
  const link = fitContrast(accent, '#000000', [LIGHT.canvas], TARGET, 0.05);
  const darkLink = fitContrast(accent, '#ffffff', [DARK.darkPaper], TARGET, 0.05);
  const onAccent = [LIGHT.paper, LIGHT.text].find((text) => contrastRatio(text, accent) >= TARGET);
  return {
    accent,
    ...LIGHT,
    link,
    button: onAccent ? accent : link,
    buttonText: onAccent ?? LIGHT.paper,
    ...DARK,
    darkLink,
    darkButton: darkLink,
    darkButtonText: DARK.darkCanvas,
  };
}
