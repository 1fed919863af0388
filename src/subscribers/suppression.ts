import { InputError, NotFoundError } from '../errors.ts';
import type { LiftedSuppression } from '../model/subscriber.ts';
import { parseEmailAddress } from './email-address.ts';

/** What lifting suppressions needs from the store; SubscribersRepo provides it. */
export interface SuppressionStore {
  unsuppress(emailKey: string, now: Date): Promise<LiftedSuppression | undefined>;
  unsuppressEdition(editionId: number, now: Date): Promise<LiftedSuppression[]>;
}

/** How an edition is known to exist; EditionsRepo provides it. */
export interface EditionLookup {
  find(id: number): Promise<unknown>;
}

/**
 * Takes one address off the suppression list (CLI and admin API): its subscriber, if bounced or
 * complained, is active again when they still have lists. NotFoundError naming the address when it
 * is not suppressed.
 */
export async function liftSuppression(store: SuppressionStore, email: unknown, now: Date): Promise<LiftedSuppression> {
  const address = parseEmailAddress(email);
  if ('error' in address) throw new InputError(address.error);
  const lifted = await store.unsuppress(address.key, now);
  if (!lifted) throw new NotFoundError(`${address.address} is not suppressed`);
  return lifted;
}

/**
 * Lifts every suppression the bounces of one edition caused (a misconfigured relay that refused a
 * whole send). An edition with none lifts nothing; NotFoundError when there is no such edition.
 */
export async function liftEditionSuppressions(deps: { store: SuppressionStore; editions: EditionLookup }, id: string | number, now: Date): Promise<LiftedSuppression[]> {
  // A string must be digits only: Number() would take ' 7', '0x7' and '7e0'.
  const editionId = typeof id === 'string' && !/^[0-9]{1,15}$/.test(id) ? NaN : Number(id);
  if (!Number.isInteger(editionId) || editionId <= 0) throw new InputError(`expected an edition id (a positive whole number), got "${String(id).slice(0, 40)}"`);
  if (!(await deps.editions.find(editionId))) throw new NotFoundError(`no edition ${editionId}`);
  return deps.store.unsuppressEdition(editionId, now);
}
