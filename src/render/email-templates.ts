import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import { convert } from 'html-to-text';
import { RenderError } from '../errors.ts';
import { slotMarker, RECIPIENT_FIELDS, type RecipientField } from './slots.ts';

/** A compiled Handlebars template with the file it came from, for error messages. */
export interface NamedTemplate {
  file: string;
  render: (context: object) => string;
}

/** An email's two templates: MJML for the HTML part, plain text for the text part. */
export interface EmailTemplatePair {
  mjml: NamedTemplate;
  text: NamedTemplate;
}

/** The email templates of templates/email/, compiled once at start-up. */
export interface EmailTemplates {
  /** Editions: a full story or a digest (also the welcome email). */
  edition: EmailTemplatePair;
  /** Transactional notices with one button: the double opt-in request, the note to an address already subscribed. */
  notice: EmailTemplatePair;
}

/** Formats a date the way emails print it, in the site's language and zone. */
export type DateFormatter = (date: Date) => string;

/** Loads templates/email/{edition,notice}.{mjml,txt}.hbs and partials/*.mjml.hbs into one Handlebars instance. */
export async function loadEmailTemplates(templatesDir: string): Promise<EmailTemplates> {
  const emailDir = path.join(templatesDir, 'email');
  const hbs = Handlebars.create();
  registerHelpers(hbs);
  const partialsDir = path.join(emailDir, 'partials');
  for (const name of (await readdir(partialsDir).catch(() => [])).sort()) {
    if (!name.endsWith('.mjml.hbs')) continue;
    const file = path.join(partialsDir, name);
    const source = await readFile(file, 'utf8');
    hbs.registerPartial(name.replace(/\.mjml\.hbs$/, ''), precompileChecked(hbs, source, shown(templatesDir, file)));
  }
  const pair = async (name: string): Promise<EmailTemplatePair> => ({
    mjml: await compileFile(hbs, templatesDir, path.join(emailDir, `${name}.mjml.hbs`), false),
    text: await compileFile(hbs, templatesDir, path.join(emailDir, `${name}.txt.hbs`), true),
  });
  return { edition: await pair('edition'), notice: await pair('notice') };
}

async function compileFile(hbs: typeof Handlebars, templatesDir: string, file: string, noEscape: boolean): Promise<NamedTemplate> {
  const name = shown(templatesDir, file);
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (cause) {
    throw new RenderError(name, 'template file not found', { cause });
  }
  const template = precompileChecked(hbs, source, name, noEscape);
  return {
    file: name,
    render: (context) => {
      try {
        return template(context);
      } catch (cause) {
        throw new RenderError(name, (cause as Error).message, { line: lineOf(cause), cause });
      }
    },
  };
}

// Handlebars parses lazily; parsing here makes a syntax error fail at load, naming file and line.
function precompileChecked(hbs: typeof Handlebars, source: string, name: string, noEscape = false): Handlebars.TemplateDelegate {
  try {
    hbs.parse(source);
  } catch (cause) {
    throw new RenderError(name, (cause as Error).message.split('\n')[0] ?? 'syntax error', { line: lineOf(cause), cause });
  }
  return hbs.compile(source, { noEscape, strict: false, knownHelpersOnly: false });
}

function lineOf(error: unknown): number | undefined {
  const match = /line (\d+)/i.exec((error as Error | undefined)?.message ?? '');
  return match ? Number(match[1]) : undefined;
}

function shown(templatesDir: string, file: string): string {
  return path.join('templates', path.relative(templatesDir, file));
}

function registerHelpers(hbs: typeof Handlebars): void {
  hbs.registerHelper('recipient', (field: unknown) => {
    if (!RECIPIENT_FIELDS.includes(field as RecipientField)) {
      throw new Error(`unknown recipient field "${String(field)}" (known: ${RECIPIENT_FIELDS.join(', ')})`);
    }
    return new hbs.SafeString(slotMarker(field as RecipientField));
  });
  hbs.registerHelper('formatDate', function (this: unknown, date: unknown, options: Handlebars.HelperOptions) {
    const format = (options.data as { root?: { formatDate?: DateFormatter } }).root?.formatDate;
    return date instanceof Date && format ? format(date) : String(date);
  });
  hbs.registerHelper('upper', (text: unknown) => String(text ?? '').toLocaleUpperCase());
  hbs.registerHelper('htmlText', (html: unknown) => htmlToPlainText(String(html ?? '')));
  // {{imageWidth image maxWidth maxHeight}} and {{imageHeight …}}: the box an image is drawn in, scaled
  // down to fit (a card: 544 × 300, so a portrait picture cannot swamp a digest; a lead image: 544 wide);
  // small images stay small. The height is empty when the story does not give both sizes.
  hbs.registerHelper('imageWidth', (image: ImageSize, maxWidth: unknown, maxHeight: unknown) => fitImage(image, maxWidth, maxHeight).width);
  hbs.registerHelper('imageHeight', (image: ImageSize, maxWidth: unknown, maxHeight: unknown) => fitImage(image, maxWidth, maxHeight).height ?? '');
}

/** The sizes a story may give its image; either may be missing. */
interface ImageSize {
  width?: number | undefined;
  height?: number | undefined;
}

/** The whole-pixel box `image` is shown in: within maxWidth (and maxHeight, when a number), keeping its shape. */
function fitImage(image: ImageSize, maxWidth: unknown, maxHeight: unknown): { width: number; height: number | undefined } {
  const boxWidth = Number(maxWidth);
  const boxHeight = typeof maxHeight === 'number' && maxHeight > 0 ? maxHeight : Infinity;
  const { width, height } = image;
  if (!width) return { width: boxWidth, height: undefined };
  if (!height) return { width: Math.min(width, boxWidth), height: undefined };
  const scale = Math.min(1, boxWidth / width, boxHeight / height);
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

/** Converts sanitized story HTML to the plain text of a text/plain part. */
export function htmlToPlainText(html: string): string {
  return convert(html, {
    wordwrap: 78,
    selectors: [
      { selector: 'a', options: { hideLinkHrefIfSameAsText: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'h2', options: { uppercase: true, leadingLineBreaks: 2, trailingLineBreaks: 1 } },
      { selector: 'h3', options: { uppercase: false, leadingLineBreaks: 2, trailingLineBreaks: 1 } },
    ],
  });
}
