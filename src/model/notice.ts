/** What a notice is: the confirmation of a subscription, the welcome after it, a reminder to an active subscriber, or an alert to the editors. */
export type NoticeKind = 'confirm' | 'welcome' | 'already-subscribed' | 'alert';

/** Where a notice stands. */
export type NoticeStatus = 'queued' | 'sent' | 'failed' | 'bounced';

/** A notice to queue: the whole message, built by the subscription flow. */
export interface NewNotice {
  kind: NoticeKind;
  subscriberId: number | null;
  email: string;
  mailboxKey: string;
  ip: string | null;
  envelopeFrom: string;
  messageKey: string;
  raw: string;
}
