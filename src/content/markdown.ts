import { Marked, type Token, type Tokens } from 'marked';
import sanitizeHtml from 'sanitize-html';
import type { StorySection } from '../model/content.ts';

const marked = new Marked({ gfm: true, async: false });

/** What a story body becomes: the intro before the first `##`, and the sections. */
export interface RenderedBody {
  introHtml: string;
  sections: StorySection[];
  /** Images written without alt text, which emails and feeds must not carry. */
  imagesWithoutAlt: string[];
}

/** Renders a Markdown body to sanitized HTML, split at its `##` headings; relative URLs become absolute. */
export function renderBody(markdown: string, baseUrl: string): RenderedBody {
  const tokens = marked.lexer(markdown);
  const imagesWithoutAlt = findImagesWithoutAlt(tokens);
  const groups: { heading: string | undefined; tokens: Token[] }[] = [{ heading: undefined, tokens: [] }];
  for (const token of tokens) {
    if (token.type === 'heading' && (token as Tokens.Heading).depth === 2) {
      groups.push({ heading: (token as Tokens.Heading).text, tokens: [] });
    } else {
      groups[groups.length - 1]!.tokens.push(token);
    }
  }
  const render = (part: Token[]) => sanitize(marked.parser(part), baseUrl);
  const [intro, ...rest] = groups;
  return {
    introHtml: render(intro!.tokens),
    sections: rest.map((group) => ({ heading: plainInline(group.heading ?? ''), html: render(group.tokens) })),
    imagesWithoutAlt,
  };
}

/** Renders inline Markdown (as in a heading) to plain text, entities decoded, tags dropped. */
export function plainInline(markdown: string): string {
  const html = marked.parseInline(markdown) as string;
  return decodeEntities(sanitizeHtml(html, { allowedTags: [], allowedAttributes: {} })).trim();
}

/** Sanitizes HTML against Gazette's allow-list: no scripts, styles, handlers or foreign schemes. */
export function sanitize(html: string, baseUrl: string): string {
  return sanitizeHtml(html, {
    allowedTags: [
      'p', 'br', 'hr', 'a', 'strong', 'b', 'em', 'i', 'u', 's', 'del', 'code', 'pre', 'blockquote',
      'ul', 'ol', 'li', 'h3', 'h4', 'h5', 'h6', 'img', 'figure', 'figcaption',
      'table', 'thead', 'tbody', 'tr', 'th', 'td', 'sup', 'sub', 'abbr',
    ],
    allowedAttributes: {
      a: ['href', 'title'],
      img: ['src', 'alt', 'width', 'height', 'title', 'style'],
      abbr: ['title'],
      th: ['align'],
      td: ['align'],
    },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['http', 'https'] },
    allowProtocolRelative: false,
    transformTags: {
      a: (tagName, attribs) => ({ tagName, attribs: { ...attribs, href: absolutize(attribs.href, baseUrl) } }),
      img: (tagName, attribs) => ({
        tagName,
        attribs: {
          ...attribs,
          src: absolutize(attribs.src, baseUrl),
          alt: attribs.alt ?? '',
          // Keeps wide images inside a 375 px screen in every mail client.
          style: 'max-width:100%;height:auto;',
        },
      }),
    },
  }).trim();
}

function absolutize(url: string | undefined, baseUrl: string): string {
  if (!url) return '';
  if (/^(https?:|mailto:|#)/i.test(url)) return url;
  try {
    return new URL(url, `${baseUrl}/`).toString();
  } catch {
    return '';
  }
}

function findImagesWithoutAlt(tokens: Token[]): string[] {
  const missing: string[] = [];
  const visit = (list: Token[] | undefined) => {
    for (const token of list ?? []) {
      if (token.type === 'image' && !(token as Tokens.Image).text.trim()) missing.push((token as Tokens.Image).href);
      const nested = token as { tokens?: Token[]; items?: Token[] };
      visit(nested.tokens);
      visit(nested.items);
    }
  };
  visit(tokens);
  return missing;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'", nbsp: '\u00a0' };

/** Decodes the entities marked and sanitize-html produce, in one pass (so `&amp;#169;` stays `&#169;`). */
export function decodeEntities(text: string): string {
  return text.replace(/&(?:(amp|lt|gt|quot|#39|apos|nbsp)|#(\d{1,7}));/g, (match, name: string | undefined, code: string | undefined) => {
    if (name) return ENTITIES[name] ?? match;
    const point = Number(code);
    return point <= 0x10ffff ? String.fromCodePoint(point) : match;
  });
}
