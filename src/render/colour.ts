// Colour arithmetic the site and the emails share, so both fit the theme's accent the same way.

type Rgb = [number, number, number];

/** WCAG 2 contrast ratio of two #rrggbb colours: 1 for the same colour, 21 for black on white. */
export function contrastRatio(a: string, b: string): number {
  const [la, lb] = [luminance(rgb(a)), luminance(rgb(b))];
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/** `a` mixed with `b`: `share` 0 is `a`, 1 is `b`. */
export function mix(a: string, b: string, share: number): string {
  const [ra, rb] = [rgb(a), rgb(b)];
  return toHex(ra.map((v, i) => v + (rb[i]! - v) * share) as Rgb);
}

/** `colour` mixed with `toward` in steps of `step` until it reaches `target` contrast on every background; `toward` if it never does. */
export function fitContrast(colour: string, toward: string, backgrounds: readonly string[], target: number, step = 0.02): string {
  for (let share = 0; share <= 1; share += step) {
    const mixed = mix(colour, toward, share);
    if (backgrounds.every((background) => contrastRatio(mixed, background) >= target)) return mixed;
  }
  return toward;
}

function luminance([r, g, b]: Rgb): number {
  const linear = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

function rgb(hex: string): Rgb {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as Rgb;
}

function toHex(value: Rgb): string {
  return `#${value.map((c) => Math.round(Math.min(255, Math.max(0, c))).toString(16).padStart(2, '0')).join('')}`;
}
