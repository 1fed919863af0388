import { GazetteError } from '../errors.ts';

/** Why a link from an email did not work. */
export type LinkProblem = 'malformed' | 'bad-signature' | 'wrong-purpose' | 'expired' | 'unknown-subscriber' | 'not-pending';

const MESSAGES: Record<LinkProblem, string> = {
  malformed: 'This link is incomplete. Copy the whole link from the email, or use the button in it.',
  'bad-signature': 'This link is not valid. Use the link from the most recent email we sent you.',
  'wrong-purpose': 'This link is meant for something else. Use the matching link from the email.',
  expired: 'This confirmation link has expired (links work for 7 days). Subscribe again and we will send a new one.',
  'unknown-subscriber': 'We have no subscription for this link any more.',
  'not-pending': 'This subscription can no longer be confirmed with this link. Subscribe again to get a new one.',
};

/** A link (token) from an email that cannot be used: shown to the visitor as a friendly page. */
export class LinkError extends GazetteError {
  readonly problem: LinkProblem;

  constructor(problem: LinkProblem) {
    super('LINK_INVALID', MESSAGES[problem]);
    this.problem = problem;
  }
}
