/** Every item of an async stream, in order. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of it) out.push(item);
  return out;
}

/** An async stream of the given items. */
export async function* from<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}
