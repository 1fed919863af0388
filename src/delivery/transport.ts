/** One finished message on its way out. */
export interface OutgoingMessage {
  /** Stable key of the message (delivery id): a resent message keeps its key. */
  key: string;
  envelopeFrom: string;
  to: string;
  raw: string;
}

/**
 * Where messages go. `send` resolves when the message is accepted, and rejects with
 * TemporaryDeliveryError, PermanentDeliveryError or TransportRejectedError.
 */
export interface Transport {
  readonly name: string;
  send(message: OutgoingMessage): Promise<void>;
  close(): Promise<void>;
}
