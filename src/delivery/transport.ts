/** One finished message on its way out. */
export interface OutgoingMessage {
  /** Stable key of the message (delivery id): a resent message keeps its key. */
  key: string;
  envelopeFrom: string;
  to: string;
  raw: string;
  /**
   * Made by Gazette's own message builder: 7-bit ASCII with CRLF line ends only (quoted-printable
   * bodies, RFC 2047 headers). A transport may then skip its own checks and write it as bytes.
   */
  canonical?: boolean;
}

/**
 * Where messages go. `send` resolves when the message is accepted, and rejects with a
 * DeliveryFault saying who is at fault; adapters translate their own errors into it.
 */
export interface Transport {
  readonly name: string;
  /** Sends one message; an aborted `signal` cuts it short (rejecting with an unreachable DeliveryFault). */
  send(message: OutgoingMessage, signal?: AbortSignal): Promise<void>;
  /** Resolves when the transport could take a message now (a session opens); rejects with a DeliveryFault otherwise. */
  probe(): Promise<void>;
  close(): Promise<void>;
}
