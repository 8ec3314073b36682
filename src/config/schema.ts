import { z } from 'zod';
import { configError } from '../errors.js';

const positiveInt = z.number({ error: 'a positive integer' }).int({ error: 'a positive integer' }).positive({ error: 'a positive integer' });
const fraction = z.number({ error: 'a number in (0, 1]' }).gt(0, { error: 'a number in (0, 1]' }).lte(1, { error: 'a number in (0, 1]' });
const nonNegative = z.number({ error: 'a non-negative number' }).nonnegative({ error: 'a non-negative number' });
const positive = z.number({ error: 'a positive number' }).positive({ error: 'a positive number' });
const autoMessage = { error: 'a positive number or "auto"' };
const positiveOrAuto = z.union([z.number(autoMessage).positive(autoMessage), z.literal('auto', autoMessage)], autoMessage);

const roundSchema = z.object({
  epochs: positiveInt,
  adversarial: z.object({
    epochs: z.number({ error: 'a non-negative integer' }).int({ error: 'a non-negative integer' }).nonnegative({ error: 'a non-negative integer' }),
    share: z.number({ error: 'a number in [0, 1]' }).min(0, { error: 'a number in [0, 1]' }).max(1, { error: 'a number in [0, 1]' }),
    maxBatches: positiveInt.nullable(),
  }),
});

/** What masked trigger inversion and the universal additive probe share: the per-class search, the outlier test, unlearning. */
const triggerSearchSchema = z.object({
  enabled: z.boolean({ error: 'true or false' }),
  steps: positiveInt,
  batchSize: positiveInt,
  lr: positive,
  lambda: nonNegative,
  anomalyThreshold: positive,
  minGap: positive,
  jointAnomalyThreshold: positive,
  jointMinGap: positive,
  minSuccess: fraction,
  refineSteps: positiveInt,
  unlearnShare: z.number({ error: 'a number in [0, 1]' }).min(0, { error: 'a number in [0, 1]' }).max(1, { error: 'a number in [0, 1]' }),
});

export const purifyConfigSchema = z
  .object({
    seed: z.number({ error: 'an integer' }).int({ error: 'an integer' }),
    labels: z.enum(['auto', 'pseudo', 'given'], { error: '"auto", "pseudo" or "given"' }),
    batchSize: positiveInt,
    initialFraction: fraction,
    keepRatio: z.array(fraction, { error: 'an array of numbers in (0, 1]' }),
    similarity: z.enum(['auto', 'logits', 'softmax'], { error: '"auto", "logits" or "softmax"' }),
    softmaxTemperature: positive,
    keepWithin: z.enum(['auto', 'all', 'predicted-class'], { error: '"auto", "all" or "predicted-class"' }),
    rounds: z.array(roundSchema, { error: 'an array of rounds' }).min(1, { error: 'at least one round' }),
    pgd: z.object({
      eps: positiveOrAuto,
      alphaRatio: positive,
      steps: positiveInt,
      randomStart: z.boolean({ error: 'true or false' }),
    }),
    optimizer: z.object({
      lr: positiveOrAuto,
      momentum: z.number({ error: 'a number in [0, 1)' }).min(0, { error: 'a number in [0, 1)' }).lt(1, { error: 'a number in [0, 1)' }),
      weightDecay: nonNegative,
    }),
    controller: z.object({
      mode: z.enum(['schedule', 'adaptive'], { error: '"schedule" or "adaptive"' }),
      cleanConcentration: z.number({ error: 'a number in (0, 1]' }).gt(0, { error: 'a number in (0, 1]' }).lte(1, { error: 'a number in (0, 1]' }),
      minShare: z.number({ error: 'a number in [0, 1]' }).min(0, { error: 'a number in [0, 1]' }).max(1, { error: 'a number in [0, 1]' }),
    }),
    probe: z.object({
      samples: positiveInt,
      epsGrid: z.array(positive, { error: 'an array of positive numbers' }).min(1, { error: 'a non-empty array of positive numbers' }),
      minFlipRate: fraction,
      lr: positive,
    }),
    inversion: triggerSearchSchema.extend({
      tieRatio: z.number({ error: 'a number of at least 1' }).min(1, { error: 'a number of at least 1' }),
    }),
    universal: triggerSearchSchema.extend({
      unlearn: z.enum(['flagged', 'all'], { error: '"flagged" or "all"' }),
    }).refine((u) => u.enabled || u.unlearn === 'flagged', { error: '"flagged" while universal.enabled is false ("all" unlearns the perturbations that probe finds)', path: ['unlearn'] }),
    inference: z.object({
      batchSize: positiveInt,
      batchMiB: positive,
    }),
    scoreStore: z.object({
      spillAbove: z.number({ error: 'a non-negative integer' }).int({ error: 'a non-negative integer' }).nonnegative({ error: 'a non-negative integer' }),
    }),
  })
  .strict();

export type PurifyConfig = z.infer<typeof purifyConfigSchema>;

/** Validates a merged config once, at the boundary; the first problem becomes one message naming its path. */
export function validatePurifyConfig(input: unknown): PurifyConfig {
  const config = validateWith(purifyConfigSchema, input);
  if (config.keepRatio.length !== config.rounds.length - 1) {
    throw configError('keepRatio', `one entry per round after the first (${config.rounds.length - 1})`, config.keepRatio);
  }
  return config;
}

/** Validates `input` against a schema; the first problem becomes one message naming its path, expected and actual value. */
export function validateWith<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      const at = path ? `${path}.` : '';
      throw configError(`${at}${issue.keys[0]}`, 'a known field (see config/README.md)', 'an unknown field');
    }
    throw configError(path, issue.message, valueAt(input, issue.path));
  }
  return result.data;
}

export const schemaParts = { positiveInt, fraction, nonNegative, positive };

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const p of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[p];
  }
  return value;
}
