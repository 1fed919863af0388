import type { MailingList, Site, Story } from '../model/content.ts';
import type { EditionRenderInput } from '../render/compile-edition.ts';

/** How many stories a digest takes when nothing else says. */
export const DEFAULT_DIGEST_SIZE = 10;

/** The subject an edition gets when the editor gives none. */
export function defaultSubject(kind: 'story' | 'digest', site: Site, stories: Story[]): string {
  const first = stories[0];
  if (!first) return site.title;
  if (kind === 'story') return first.title;
  const more = stories.length - 1;
  return `${site.title}: ${first.title}${more > 0 ? ` (+${more} more)` : ''}`;
}

/** The preheader: the line mail clients show after the subject. */
export function defaultPreheader(kind: 'story' | 'digest', stories: Story[]): string {
  const text = kind === 'story' ? (stories[0]?.summary ?? '') : stories.map((story) => story.title).join(' · ');
  return text.length > 140 ? `${text.slice(0, 139).replace(/\s+\S*$/, '')}…` : text;
}

/** Choices an editor may make about an edition; everything else has a default. */
export interface EditionChoices {
  subject?: string | undefined;
  preheader?: string | undefined;
  viewUrl?: string | undefined;
  intro?: string | undefined;
}

/** Puts together what the renderer needs for an edition of `stories` to `list`. */
export function composeEdition(
  site: Site,
  list: MailingList,
  kind: 'story' | 'digest',
  stories: Story[],
  date: Date,
  choices: EditionChoices = {},
): EditionRenderInput {
  return {
    kind,
    site,
    list,
    stories,
    subject: choices.subject ?? defaultSubject(kind, site, stories),
    preheader: choices.preheader ?? defaultPreheader(kind, stories),
    viewUrl: choices.viewUrl ?? (kind === 'story' && stories[0] ? stories[0].url : `${site.baseUrl}/`),
    date,
    intro: choices.intro,
  };
}
