import { usageError } from '../errors.js';
import { badnets } from './badnets.js';
import { blend } from './blend.js';
import type { TriggerBuilder, TriggerOptions } from './pattern-trigger.js';

const attacks: Record<string, (opts: TriggerOptions) => TriggerBuilder> = { badnets, blend };

export const attackNames = Object.keys(attacks);

export function triggerFor(attack: string, opts: TriggerOptions = {}): TriggerBuilder {
  const make = attacks[attack];
  if (!make) throw usageError(`unknown attack "${attack}"; known attacks: ${attackNames.join(', ')}`);
  return make(opts);
}
