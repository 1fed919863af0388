/** Domains whose mailboxes ignore dots in the local part (Gmail's rule). */
const DOTLESS = new Set(['gmail.com', 'googlemail.com']);

/**
 * The mailbox an address delivers to, for throttles: lower-cased, `+tag` dropped (Gmail, Outlook,
 * Fastmail, iCloud and Proton all deliver tagged mail to the base address) and, for Gmail, dots
 * dropped. `victim+1@` and `v.i.c.t.i.m@gmail.com` then count as the one mailbox they reach.
 */
export function mailboxKey(address: string): string {
  const at = address.lastIndexOf('@');
  let local = address.slice(0, at).toLowerCase();
  let domain = address.slice(at + 1).toLowerCase();
  local = local.replace(/\+.*$/, '');
  if (DOTLESS.has(domain)) {
    domain = 'gmail.com';
    local = local.replace(/\./g, '');
  }
  return `${local}@${domain}`;
}
