/** Group `text`: tokenizer ids and CLIP last_hidden_state of the case's prompts. */
import { GoldenError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { encodeText, tokenize } from '../engine.js';
import type { GoldenContext } from '../runner.js';

function prompts(ctx: GoldenContext): string[] {
  const fromParams = ctx.golden.tensors['text.input_ids']?.params?.['prompts'];
  const list = Array.isArray(fromParams) ? fromParams : ctx.golden.meta['prompts'];
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) {
    throw new GoldenError(`${ctx.golden.dir}: io.json has no 'prompts' list of strings for the text group`);
  }
  return list;
}

export async function runTextGroup(ctx: GoldenContext): Promise<Record<string, Tensor>> {
  const engine = ctx.model();
  const list = prompts(ctx);
  return {
    'text.input_ids': tokenize(engine, list),
    'text.last_hidden_state': await encodeText(engine, list),
  };
}
