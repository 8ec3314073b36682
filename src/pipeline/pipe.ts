/**
 * Typed composition of async-iterable stages.
 *
 *   const run = pipe(source, decode(opts), batch({ size: 128 }));
 *   for await (const b of run.output) ...;  run.summary  // "tar(3 shards) -> decode -> batch(128)"
 *
 * A stage whose input type does not match the previous stage's output does not compile.
 */

export interface StageContext {
  signal?: AbortSignal;
  log?: (message: string) => void;
}

export interface Stage<I, O> {
  (source: AsyncIterable<I>, ctx: StageContext): AsyncIterable<O>;
  summary(): string;
}

/** Builds a stage from a generator function and a summary string. */
export function stage<I, O>(
  summary: string,
  run: (source: AsyncIterable<I>, ctx: StageContext) => AsyncIterable<O>,
): Stage<I, O> {
  const s = ((source: AsyncIterable<I>, ctx: StageContext) => run(source, ctx)) as Stage<I, O>;
  s.summary = () => summary;
  return s;
}

export interface Described<T> {
  output: AsyncIterable<T>;
  summary: string;
}

export function pipe<A, B>(src: Described<A>, s1: Stage<A, B>, ctx?: StageContext): Described<B>;
export function pipe<A, B, C>(src: Described<A>, s1: Stage<A, B>, s2: Stage<B, C>, ctx?: StageContext): Described<C>;
export function pipe<A, B, C, D>(
  src: Described<A>, s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, ctx?: StageContext,
): Described<D>;
export function pipe<A, B, C, D, E>(
  src: Described<A>, s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>, ctx?: StageContext,
): Described<E>;
export function pipe<A, B, C, D, E, F>(
  src: Described<A>, s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>, s5: Stage<E, F>,
  ctx?: StageContext,
): Described<F>;
export function pipe<A, B, C, D, E, F, G>(
  src: Described<A>, s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>, s5: Stage<E, F>,
  s6: Stage<F, G>, ctx?: StageContext,
): Described<G>;
export function pipe<A, B, C, D, E, F, G, H>(
  src: Described<A>, s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>, s5: Stage<E, F>,
  s6: Stage<F, G>, s7: Stage<G, H>, ctx?: StageContext,
): Described<H>;
export function pipe(src: Described<unknown>, ...rest: unknown[]): Described<unknown> {
  const last = rest[rest.length - 1];
  const ctx: StageContext = typeof last === 'function' ? {} : ((rest.pop() as StageContext | undefined) ?? {});
  const stages = rest as Stage<unknown, unknown>[];
  let output = src.output;
  stages.forEach((s, position) => {
    output = labelErrors(s(output, ctx), position + 1, s.summary());
  });
  return { output, summary: [src.summary, ...stages.map((s) => s.summary())].join(' -> ') };
}

/** Re-throws a stage's error with its position in the chain, keeping the original as cause. */
async function* labelErrors<T>(it: AsyncIterable<T>, position: number, summary: string): AsyncIterable<T> {
  try {
    yield* it;
  } catch (err) {
    if (err instanceof Error && !(err as { stage?: string }).stage) {
      Object.assign(err, { stage: `stage ${position} (${summary})` });
    }
    throw err;
  }
}

export function described<T>(summary: string, output: AsyncIterable<T>): Described<T> {
  return { output, summary };
}
