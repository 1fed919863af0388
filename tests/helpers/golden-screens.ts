import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pixelmatch from 'pixelmatch';
import { PNG } from 'pngjs';
import { expect } from 'vitest';

// Golden screenshots, one way for pages and emails: pixelmatch against tests/fixtures/screens/,
// rewritten only under `npm run test:screens:update` (GAZETTE_UPDATE_SCREENS=1).

const SCREENS_DIR = fileURLToPath(new URL('../fixtures/screens/', import.meta.url));
const ARTIFACTS_DIR = fileURLToPath(new URL('../../test-artifacts/screens/', import.meta.url));
const UPDATE = process.env.GAZETTE_UPDATE_SCREENS === '1';
// pixelmatch's default colour distance, and a share of differing pixels that absorbs glyph hinting
// between Chromium builds (re-renders here differ by 0 pixels).
const PIXEL_THRESHOLD = 0.1;
const MAX_DIFF_SHARE = 0.002;

/** `image` on a canvas of width × height, the rest opaque magenta, so a size change shows up as difference. */
function padded(image: PNG, width: number, height: number): PNG {
  if (image.width === width && image.height === height) return image;
  const out = new PNG({ width, height });
  for (let i = 0; i < out.data.length; i += 4) out.data.set([255, 0, 255, 255], i);
  for (let y = 0; y < image.height; y++) image.data.copy(out.data, y * width * 4, y * image.width * 4, (y + 1) * image.width * 4);
  return out;
}

/** Compares a screenshot with its golden; writes the golden instead under `npm run test:screens:update`. */
export async function expectMatchesGolden(name: string, actual: Buffer): Promise<void> {
  const goldenFile = path.join(SCREENS_DIR, `${name}.png`);
  const actualFile = path.join(ARTIFACTS_DIR, `${name}.actual.png`);
  const diffFile = path.join(ARTIFACTS_DIR, `${name}.diff.png`);
  const shown = (file: string) => path.relative(process.cwd(), file);
  await rm(actualFile, { force: true });
  await rm(diffFile, { force: true });
  if (UPDATE) {
    await writeFile(goldenFile, actual);
    console.info(`wrote ${shown(goldenFile)}: look at it before committing it`);
    return;
  }
  if (!existsSync(goldenFile)) expect.fail(`no golden screenshot ${shown(goldenFile)}: run \`npm run test:screens:update\`, look at the PNGs it writes, and commit them`);
  const golden = PNG.sync.read(await readFile(goldenFile));
  const shot = PNG.sync.read(actual);
  const width = Math.max(golden.width, shot.width);
  const height = Math.max(golden.height, shot.height);
  const diff = new PNG({ width, height });
  const differing = pixelmatch(padded(golden, width, height).data, padded(shot, width, height).data, diff.data, width, height, { threshold: PIXEL_THRESHOLD });
  const share = differing / (width * height);
  const sameSize = golden.width === shot.width && golden.height === shot.height;
  if (share <= MAX_DIFF_SHARE && sameSize) return;
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  await writeFile(actualFile, actual);
  await writeFile(diffFile, PNG.sync.write(diff));
  expect.fail(
    `${name}: ${differing} of ${width * height} pixels differ (${(share * 100).toFixed(3)}%, limit ${MAX_DIFF_SHARE * 100}%)` +
      (sameSize ? '' : `; size ${shot.width}×${shot.height}, golden ${golden.width}×${golden.height}`) +
      `. Diff: ${shown(diffFile)}, screenshot: ${shown(actualFile)}. ` +
      'If the change is intended, run `npm run test:screens:update` and review the new goldens.',
  );
}
