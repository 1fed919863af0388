/**
 * Frames an SMTP server's byte stream into replies, the way nodemailer's SMTPConnection reads
 * them: lines end at LF (a CR before it is dropped), a reply goes on while its last line reads
 * `NNN-`, the lines of one reply are joined with `\n`, and blank lines between replies are
 * skipped. Reading them alike keeps every reply string, and so every error built from it, the
 * same on the pipelined path as on nodemailer's: smtp-fault.ts reads them unchanged.
 */
export class ReplyReader {
  // Bytes after the last line break, held as latin1 (one char per byte) so that a UTF-8
  // character split across two packets is put back together before it is decoded.
  private remainder = '';
  // The lines so far of a multi-line reply still coming in.
  private partial: string | undefined;

  constructor(private readonly maxReplyBytes = 1024 * 1024) {}

  /**
   * The replies completed by `chunk`, in order. Throws ReplyTooLarge when a reply (or a line
   * without its end) outgrows maxReplyBytes: a peer that never finishes one is not buffered for.
   */
  push(chunk: Buffer): string[] {
    const data = chunk.toString('latin1');
    if (!data.includes('\n')) {
      this.remainder += data;
      if (this.remainder.length > this.maxReplyBytes) throw new ReplyTooLarge();
      return [];
    }
    const lines = (this.remainder + data).split(/\r?\n/);
    this.remainder = lines.pop() ?? '';
    const replies: string[] = [];
    for (const line of lines) {
      this.partial = this.partial === undefined ? line : `${this.partial}\n${line}`;
      if (/^\d+-/.test(line)) {
        if (this.partial.length > this.maxReplyBytes) throw new ReplyTooLarge();
        continue;
      }
      const reply = this.partial;
      this.partial = undefined;
      if (reply.trim()) replies.push(decodeReply(reply));
    }
    if (this.remainder.length > this.maxReplyBytes) throw new ReplyTooLarge();
    return replies;
  }

  /** What came after the last line break: a reply the connection's close cut off, if any. */
  unterminated(): string {
    return decodeReply(this.remainder.trim());
  }
}

/** A reply longer than the reader takes. */
export class ReplyTooLarge extends Error {
  constructor() {
    super('Server response exceeds maximum allowed size');
  }
}

// Reply text has no declared charset (RFC 5321 4.2.1); most servers send UTF-8. Bytes that are
// not valid UTF-8 are kept as they came, one char per byte, as nodemailer keeps them.
function decodeReply(latin1: string): string {
  if (!/[\x80-\xff]/.test(latin1)) return latin1;
  const utf8 = Buffer.from(latin1, 'latin1').toString('utf8');
  return utf8.includes('\uFFFD') ? latin1 : utf8;
}
