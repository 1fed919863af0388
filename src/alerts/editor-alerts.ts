import type { Content } from '../model/content.ts';
import { prepareMessageTemplate, renderMessage } from '../delivery/mime-message.ts';
import { compileEmail } from '../render/compile-edition.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import { recipientValues } from '../render/slots.ts';
import type { NewNotice } from '../model/notice.ts';
import { mailboxKey } from '../subscribers/mailbox-key.ts';

/** Something the editors must hear of at once: what happened (the subject), in a sentence, and the particulars. */
export interface EditorAlert {
  subject: string;
  summary: string;
  details: string[];
}

/** Tells the editors: one email each to site.yaml's editors, queued for the worker like any notice. */
export type AlertEditors = (alert: EditorAlert) => Promise<void>;

/** What alerting needs from the app. */
export interface EditorAlertDeps {
  content: () => Promise<Content>;
  templates: () => Promise<EmailTemplates>;
  notices: { add(notice: NewNotice): Promise<number> };
  now: () => Date;
  /** Tells a worker in this process a notice is waiting. */
  wake: () => void;
}

/** Builds the alert function; an alert that cannot be built (no content at all) is lost only after it is logged by the caller. */
export function createEditorAlerts(deps: EditorAlertDeps): AlertEditors {
  return async (alert) => {
    const { site } = await deps.content();
    if (site.editors.length === 0) return;
    const compiled = await compileEmail((await deps.templates()).notice, {
      site,
      subject: `[${site.title}] ${alert.subject}`,
      preheader: alert.summary,
      lead: alert.summary,
      button: `Open ${site.title}`,
      note: alert.details.join(' · '),
    });
    const template = prepareMessageTemplate(site, undefined, compiled);
    const now = deps.now();
    for (const [i, email] of site.editors.entries()) {
      const messageKey = `alert.${now.getTime()}.${i}.${Math.random().toString(36).slice(2, 8)}`;
      const raw = renderMessage(template, {
        email,
        values: recipientValues({ greeting: 'Hello,', email, unsubscribe_url: site.baseUrl, preferences_url: site.baseUrl, action_url: site.baseUrl }),
        unsubscribeUrl: undefined,
        unsubscribeMailto: undefined,
        messageKey,
        date: now,
      });
      await deps.notices.add({ kind: 'alert', subscriberId: null, email, mailboxKey: mailboxKey(email), ip: null, envelopeFrom: site.sender.address, messageKey, raw });
    }
    deps.wake();
  };
}
