/**
 * A local runner for the subset of Amazon States Language that examples/step-functions uses:
 * Task states that invoke a Lambda (`Parameters.Payload`), Map states (ItemsPath, ItemSelector,
 * MaxConcurrency, an inline ItemProcessor), Fail states, ResultSelector and ResultPath, Retry
 * and Catch by error name. Paths are `$`, `$.a.b` and `$$.Map.Item.Value`. It follows the
 * definition as written, so a test of it checks the state machine's wiring, with the Lambda
 * played by whatever `invoke` does. Retries do not wait.
 */

type Json = unknown;
type State = Record<string, Json>;
interface Machine {
  StartAt: string;
  States: Record<string, State>;
}

/** A failure as Step Functions sees it: the Lambda's error type and its cause. */
export class StatesError extends Error {
  constructor(
    readonly error: string,
    readonly causeText: string,
  ) {
    super(`${error}: ${causeText}`);
  }
}

export interface AslRunOptions {
  /** Invokes the Lambda with a payload; a thrown error's `name` is the error Step Functions sees. */
  invoke: (payload: Json) => Promise<Json>;
  /** A cap on every Map's concurrency (the workers there are). */
  maxConcurrency?: number;
  /** Hears every state entered, with its input. */
  onState?: (name: string, input: Json) => void;
}

function readPath(path: string, input: Json, context: Json): Json {
  const [root, rest] = path.startsWith('$$') ? [context, path.slice(2)] : [input, path.slice(1)];
  if (rest === '') return root;
  let value: Json = root;
  for (const part of rest.slice(1).split('.')) {
    if (value === null || typeof value !== 'object' || !(part in value)) throw new StatesError('States.Runtime', `no ${path} in the input`);
    value = (value as Record<string, Json>)[part];
  }
  return value;
}

function resolve(template: Json, input: Json, context: Json): Json {
  if (Array.isArray(template)) return template.map((item) => resolve(item, input, context));
  if (template === null || typeof template !== 'object') return template;
  return Object.fromEntries(
    Object.entries(template).map(([key, value]) =>
      key.endsWith('.$') ? [key.slice(0, -2), readPath(value as string, input, context)] : [key, resolve(value, input, context)],
    ),
  );
}

function writePath(input: Json, path: string | null | undefined, result: Json): Json {
  if (path === null) return input;
  if (path === undefined || path === '$') return result;
  const parts = path.slice(2).split('.');
  const copy = structuredClone(input) as Record<string, Json>;
  let target = copy;
  for (const part of parts.slice(0, -1)) target = (target[part] ??= {}) as Record<string, Json>;
  target[parts.at(-1)!] = result;
  return copy;
}

const matches = (rule: State, error: string) =>
  (rule['ErrorEquals'] as string[]).some((name) => name === error || (name === 'States.ALL' && !error.startsWith('States.Runtime')));

function asStatesError(error: unknown): StatesError {
  if (error instanceof StatesError) return error;
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return new StatesError(name, JSON.stringify({ errorType: name, errorMessage: message }));
}

/** Runs the state machine from its StartAt with `input`; resolves to its output. */
export async function runStateMachine(machine: Machine, input: Json, options: AslRunOptions): Promise<Json> {
  let name = machine.StartAt;
  let data = input;
  for (;;) {
    const state = machine.States[name];
    if (!state) throw new Error(`state machine: no state "${name}"`);
    options.onState?.(name, data);
    if (state['Type'] === 'Fail') throw new StatesError(String(state['Error']), String(state['Cause'] ?? ''));
    let result: Json;
    try {
      result = await withRetries(state, () => runState(state, data, options));
    } catch (thrown) {
      const error = asStatesError(thrown);
      const rule = ((state['Catch'] ?? []) as State[]).find((catcher) => matches(catcher, error.error));
      if (!rule) throw error;
      data = writePath(data, rule['ResultPath'] as string | null | undefined, { Error: error.error, Cause: error.causeText });
      name = String(rule['Next']);
      continue;
    }
    if (state['ResultSelector']) result = resolve(state['ResultSelector'], result, {});
    data = writePath(data, state['ResultPath'] as string | null | undefined, result);
    if (state['End'] === true) return data;
    name = String(state['Next']);
  }
}

async function withRetries(state: State, work: () => Promise<Json>): Promise<Json> {
  const attempts = new Map<State, number>();
  for (;;) {
    try {
      return await work();
    } catch (thrown) {
      const error = asStatesError(thrown);
      const rule = ((state['Retry'] ?? []) as State[]).find((retrier) => matches(retrier, error.error));
      const used = rule ? (attempts.get(rule) ?? 0) : 0;
      if (!rule || used >= Number(rule['MaxAttempts'] ?? 3)) throw error;
      attempts.set(rule, used + 1);
    }
  }
}

async function runState(state: State, data: Json, options: AslRunOptions): Promise<Json> {
  if (state['Type'] === 'Task') {
    if (state['Resource'] !== 'arn:aws:states:::lambda:invoke') throw new Error(`state machine: unsupported resource ${String(state['Resource'])}`);
    const parameters = resolve(state['Parameters'], data, {}) as { Payload: Json };
    return { Payload: await options.invoke(parameters.Payload) };
  }
  if (state['Type'] === 'Map') {
    const items = readPath(String(state['ItemsPath'] ?? '$'), data, {}) as Json[];
    const processor = state['ItemProcessor'] as Machine;
    const limit = Math.min(Number(state['MaxConcurrency'] ?? 0) || Infinity, options.maxConcurrency ?? Infinity, Math.max(items.length, 1));
    const results: Json[] = new Array(items.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: limit }, async () => {
        for (let index = next++; index < items.length; index = next++) {
          const context = { Map: { Item: { Index: index, Value: items[index] } } };
          const itemInput = state['ItemSelector'] ? resolve(state['ItemSelector'], data, context) : items[index];
          results[index] = await runStateMachine(processor, itemInput, options);
        }
      }),
    );
    return results;
  }
  throw new Error(`state machine: unsupported state type ${String(state['Type'])}`);
}
