import type { MessageSigner } from './dkim.ts';
import { renderMessage, type MessageRecipient, type MessageTemplate } from './mime-message.ts';
import type { Transport } from './transport.ts';

/** Builds, signs and sends one message outside the queue (confirmations, welcomes, test sends). */
export async function sendOne(
  transport: Transport,
  signMessage: MessageSigner,
  template: MessageTemplate,
  recipient: MessageRecipient,
): Promise<void> {
  const raw = await signMessage(renderMessage(template, recipient));
  await transport.send({ key: recipient.messageKey, envelopeFrom: template.envelopeFrom, to: recipient.email, raw });
}
