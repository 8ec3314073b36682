import { usageError } from '../errors.js';
import type { Defense } from './defense.js';
import { abl } from './abl.js';
import { aft } from './aft.js';
import { anp } from './anp.js';
import { finePruning } from './fine-pruning.js';
import { ft } from './ft.js';
import { iBau } from './i-bau.js';
import { nad } from './nad.js';
import { pbe } from './pbe.js';
import { spectral } from './spectral.js';

/** Every defense `pbe purify --defense` and `pbe bench` know, by name (one file each, see defense.ts). */
const defenses: Record<string, Defense<any>> = { pbe, aft, ft, 'fine-pruning': finePruning, nad, anp, 'i-bau': iBau, abl, spectral };

export const defenseNames = Object.keys(defenses);

export function defenseFor(name: string): Defense<unknown> {
  const defense = defenses[name];
  if (!defense) throw usageError(`unknown defense "${name}"; known defenses: ${defenseNames.join(', ')}`);
  return defense;
}
