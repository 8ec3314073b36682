import { usageError } from '../errors.js';
import { badnets } from './badnets.js';
import { blend } from './blend.js';
import { bpp } from './bpp.js';
import { ftrojan } from './ftrojan.js';
import { lc } from './lc.js';
import { attackDefaults, resolveOptions } from './options.js';
import { sig } from './sig.js';
import { quantize, type Attack, type ImageShape, type Trigger } from './trigger.js';
import { trojan } from './trojan.js';
import { wanet } from './wanet.js';

/** Every attack pbe can plant: one file each; adding one is that file and one entry here. */
const attacks: Attack<never>[] = [badnets, blend, trojan, sig, wanet, lc, bpp, ftrojan] as Attack<never>[];

export const attackNames = attacks.map((a) => a.name);

export function getAttack(name: string): Attack {
  const attack = attacks.find((a) => a.name === name);
  if (!attack) throw usageError(`unknown attack "${name}"; known attacks: ${attackNames.join(', ')}`);
  return attack as Attack;
}

/** Builds the trigger for one image shape. */
export type TriggerBuilder = (shape: ImageShape) => Trigger;

/**
 * The trigger of `attack` with its defaults (config/attacks/<name>.json) overridden by `options`, validated now;
 * the returned builder makes it for an image shape. Every image it returns is rounded to 8-bit levels.
 *
 *   const trigger = triggerFor('badnets', { size: 3, position: 'top-left' })({ height: 28, width: 28, channels: 1 });
 */
export function triggerFor(attack: string, options: Record<string, unknown> = {}): TriggerBuilder {
  const definition = getAttack(attack);
  const resolved = resolveOptions(definition, fromLegacy(attack, options));
  return (shape) => quantized(definition.build(resolved, shape));
}

/** The options an attack runs with (defaults, then `options`), as recorded beside its outputs. */
export function attackSettings(attack: string, options: Record<string, unknown> = {}): { attack: string; rate: number; cleanLabel: boolean; options: unknown } {
  const definition = getAttack(attack);
  return { attack, rate: attackDefaults(attack).rate, cleanLabel: definition.cleanLabel, options: resolveOptions(definition, fromLegacy(attack, options)) };
}

function quantized(t: Trigger): Trigger {
  return {
    attack: t.attack,
    shape: t.shape,
    cleanLabel: t.cleanLabel,
    noiseRatio: t.noiseRatio,
    negativeRatio: t.negativeRatio,
    maxChange: t.maxChange,
    region: t.region,
    apply: (pixels) => quantize(t.apply(pixels)),
    poison: t.poison && (async (pixels, label) => quantize(await t.poison!(pixels, label))),
    noise: t.noise && ((pixels, rng) => quantize(t.noise!(pixels, rng))),
    negative: t.negative && ((pixels, donor) => quantize(t.negative!(pixels, donor))),
  };
}

/** The option names of pbe before the registry (patchSize, blendRatio, ...), still accepted. */
const legacy: Record<string, Record<string, string>> = {
  badnets: { patchSize: 'size', patchPosition: 'position', patternFile: 'pattern' },
  blend: { blendRatio: 'ratio', patternFile: 'pattern', patternSeed: 'seed' },
};

function fromLegacy(attack: string, options: Record<string, unknown>): Record<string, unknown> {
  const names = legacy[attack] ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (k in names) out[names[k]] = v;
    else if (!Object.values(legacy).some((m) => k in m)) out[k] = v;
  }
  return out;
}
