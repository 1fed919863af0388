import type { MailingList, Site, Story } from '../model/content.ts';
import { RenderError } from '../errors.ts';
import { emailPalette } from './email-palette.ts';
import type { DateFormatter, EmailTemplatePair, EmailTemplates } from './email-templates.ts';
import { splitSlots, type SlotTemplate } from './slots.ts';

/** What an edition is made of, as the renderer needs it. */
export interface EditionRenderInput {
  kind: 'story' | 'digest';
  site: Site;
  list: MailingList;
  stories: Story[];
  subject: string;
  preheader: string;
  /** Where "view in browser" leads. */
  viewUrl: string;
  /** The edition's date, printed in the header. */
  date: Date;
  /** Optional line above a digest's stories. */
  intro?: string | undefined;
}

/** An edition rendered once: HTML and text with recipient slots still open. */
export interface CompiledEdition {
  subject: string;
  preheader: string;
  html: SlotTemplate;
  text: SlotTemplate;
}

/** Renders Handlebars → MJML → HTML, and the text part, once for the whole edition. */
export async function compileEdition(templates: EmailTemplates, input: EditionRenderInput): Promise<CompiledEdition> {
  if (input.stories.length === 0 && !input.intro) {
    throw new RenderError(templates.edition.mjml.file, 'an edition needs at least one story');
  }
  const formatDate = dateFormatter(input.site);
  return compileEmail(templates.edition, {
    ...input,
    isDigest: input.kind === 'digest',
    story: input.stories[0],
    editionDate: formatDate(input.date),
    formatDate,
  });
}

/**
 * Renders any email template pair once (MJML → HTML, and text), leaving recipient slots open.
 * Templates also get `palette`: the site theme's colours, light and dark (email-palette.ts).
 */
export async function compileEmail(
  templates: EmailTemplatePair,
  context: { site: Site; subject: string; preheader: string } & Record<string, unknown>,
): Promise<CompiledEdition> {
  const mjmlSource = templates.mjml.render({ ...context, palette: emailPalette(context.site.theme) });
  // Loaded on first compile: workers and the HTTP server's hot paths never need MJML's ~100 MB.
  const { default: mjml2html } = await import('mjml');
  const result = await mjml2html(mjmlSource, {
    validationLevel: 'soft',
    keepComments: false,
    minify: true,
    minifyOptions: { minifyCss: false },
  });
  const error = result.errors[0];
  if (error) {
    throw new RenderError(`${templates.mjml.file} (generated MJML)`, `${error.tagName}: ${error.message}`, {
      line: error.line,
    });
  }
  const text = templates.text.render(context).replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim() + '\n';
  return {
    subject: context.subject,
    preheader: context.preheader,
    html: splitSlots(result.html),
    text: splitSlots(text),
  };
}

/** The date format of emails and pages: long form, in the site's language and zone. */
export function dateFormatter(site: Site): DateFormatter {
  const format = new Intl.DateTimeFormat(site.language, { dateStyle: 'long', timeZone: site.timezone });
  return (date) => format.format(date);
}
