import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenMapSize, type AttentionProcessor, type AttentionSite } from '../../../src/models/unet/attention-processor.js';
import { attentionMapProcessor } from '../../../src/models/unet/explicit-attention.js';
import { officialFreeU } from '../../../src/models/unet/freeu.js';
import { buildUNet } from '../../../src/models/unet/unet-2d-condition.js';
import { constFloat, mul } from '../../../src/onnx/ops.js';
import { modelToBytes } from '../../../src/onnx/save.js';
import { Session } from '../../../src/runtime/session.js';
import { float32, type Tensor } from '../../../src/tensor/tensor.js';
import { compareTensors, expectClose } from '../../helpers/expect-close.js';
import { sd1Tiny } from '../../helpers/golden.js';
import { randomFloats, runGraph, sd1TinyUNetConfig, sd1TinyUNetWeights, seededUniform } from './tiny-unet.js';

const golden = sd1Tiny();
const config = sd1TinyUNetConfig();
const feeds = {
  sample: golden.get('unet.sample'),
  timestep: golden.get('unet.timestep'),
  encoder_hidden_states: golden.get('unet.encoder_hidden_states'),
};
const plainTol = { ...golden.tolerance('unet_plain.out'), label: 'unet_plain.out' };

const transformers = [
  ...[0, 1, 2].flatMap((i) => [0, 1].map((j) => ({ path: `down_blocks.${i}.attentions.${j}.transformer_blocks.0`, block: 'down', index: i, level: i }))),
  { path: 'mid_block.attentions.0.transformer_blocks.0', block: 'mid', index: 0, level: 3 },
  ...[1, 2, 3].flatMap((i) => [0, 1, 2].map((j) => ({ path: `up_blocks.${i}.attentions.${j}.transformer_blocks.0`, block: 'up', index: i, level: 3 - i }))),
];

const everywhere = (processor: AttentionProcessor, only?: (site: AttentionSite) => boolean) => ({
  choose: (site: AttentionSite) => (only === undefined || only(site) ? processor : undefined),
});

test('buildUNet returns every Attention module it built, attn1 and attn2, with block, level, width and heads', () => {
  const built = buildUNet(sd1TinyUNetWeights(), config, { freeu: null });
  const expected = transformers.flatMap((t) =>
    (['attn1', 'attn2'] as const).map((a) => ({
      modulePath: `${t.path}.${a}`,
      kind: a === 'attn1' ? 'self' : 'cross',
      block: t.block,
      blockIndex: t.index,
      level: t.level,
      channels: config.blockOutChannels[t.block === 'up' ? 3 - t.index : t.block === 'mid' ? 3 : t.index],
      heads: 2,
    })),
  );
  assert.deepEqual(built.sites, expected);
  assert.deepEqual(built.processed, []);
  assert.deepEqual(built.processorInputs, []);
});

test('an identity processor at every site (sources, projections) changes nothing', async () => {
  const identity: AttentionProcessor = { editSources: (_ctx, s) => s, editProjections: (_ctx, qkv) => qkv };
  const built = buildUNet(sd1TinyUNetWeights(), config, { freeu: null, processors: everywhere(identity) });
  assert.equal(built.processed.length, 2 * transformers.length);
  expectClose(await runGraph(built, feeds), golden.get('unet_plain.out'), plainTol);
});

test('a processor may edit the sources of Q/K and V separately, or Q, K, V after projection', async () => {
  const zero = (s: Parameters<NonNullable<AttentionProcessor['editSources']>>[0], v: Parameters<typeof mul>[1]) =>
    mul(s.scope.sub('zero'), v, constFloat(s.scope.g, 0));
  const up3 = (site: AttentionSite): boolean => site.block === 'up' && site.blockIndex === 3 && site.kind === 'self';
  const variants: Record<string, AttentionProcessor> = {
    qk: { editSources: (ctx, s) => ({ ...s, q: zero(ctx, s.q), k: zero(ctx, s.k) }) },
    v: { editSources: (ctx, s) => ({ ...s, v: zero(ctx, s.v) }) },
    projectedV: { editProjections: (ctx, qkv) => ({ ...qkv, v: zero(ctx, qkv.v) }) },
  };
  const outs: Record<string, Tensor> = {};
  for (const [name, p] of Object.entries(variants))
    outs[name] = await runGraph(buildUNet(sd1TinyUNetWeights(), config, { freeu: null, processors: everywhere(p, up3) }), feeds);
  for (const [name, out] of Object.entries(outs)) {
    const r = compareTensors(out, golden.get('unet_plain.out'), { atol: 1e-4, rtol: 1e-3, label: name });
    assert.ok(r.maxAbs > 1e-3, `${name}: output barely changed (max|diff| ${r.maxAbs})`);
  }
  // to_v has no bias: zero sources and zero projected values are the same graph edit.
  expectClose(outs['projectedV']!, outs['v']!, { atol: 1e-6, rtol: 0, label: 'V zeroed before vs after to_v' });
  assert.ok(compareTensors(outs['qk']!, outs['v']!, { atol: 1e-4, rtol: 1e-3, label: 'qk vs v' }).maxAbs > 1e-3);
});

test('a processor that computes the attention itself matches MultiHeadAttention and writes head-averaged maps when asked', async () => {
  const maps = (site: AttentionSite) => attentionMapProcessor({ record: 'record_maps', output: `maps.${site.modulePath}` });
  const built = buildUNet(sd1TinyUNetWeights(), config, { freeu: officialFreeU(config), processors: { choose: (site) => maps(site) } });
  assert.deepEqual(
    built.processorInputs.map((i) => i.name),
    ['record_maps'],
    'a shared input is declared once',
  );
  const session = await Session.create(modelToBytes(built.graph));
  try {
    const off = await session.run({ ...feeds, record_maps: { dtype: 'int64', dims: [1], data: BigInt64Array.of(0n) } });
    expectClose(off['out_sample']!, golden.get('unet_freeu.out'), { ...golden.tolerance('unet_freeu.out'), label: 'explicit attention' });
    assert.deepEqual(off['maps.up_blocks.3.attentions.0.transformer_blocks.0.attn1']!.dims, [0, 0, 0]);
    const on = await session.run({ ...feeds, record_maps: { dtype: 'int64', dims: [1], data: BigInt64Array.of(1n) } });
    const self = on['maps.up_blocks.3.attentions.0.transformer_blocks.0.attn1']!;
    const cross = on['maps.up_blocks.3.attentions.0.transformer_blocks.0.attn2']!;
    assert.deepEqual(self.dims, [2, 256, 256]);
    assert.deepEqual(cross.dims, [2, 256, 77]);
    for (const t of [self, cross]) {
      const rows = t.dims[0]! * t.dims[1]!;
      const n = t.dims[2]!;
      for (let r = 0; r < rows; r += 37) {
        let sum = 0;
        for (let j = 0; j < n; j++) sum += (t.data as Float32Array)[r * n + j]!;
        assert.ok(Math.abs(sum - 1) < 1e-5, `row ${r} of the maps sums to ${sum}`);
      }
    }
  } finally {
    await session.dispose();
  }
});

test('a processor sees its token map: graph height/width agree with tokenMapSize on a non-square latent', async () => {
  const picked = [
    'down_blocks.0.attentions.0.transformer_blocks.0.attn1',
    'mid_block.attentions.0.transformer_blocks.0.attn2',
    'up_blocks.2.attentions.1.transformer_blocks.0.attn1',
  ];
  const built = buildUNet(sd1TinyUNetWeights(), config, {
    freeu: null,
    processors: {
      choose: (site) => {
        const i = picked.indexOf(site.modulePath);
        if (i < 0) return undefined;
        return {
          outputs: [
            { name: `height_${i}`, dtype: 'int64', dims: [1] },
            { name: `width_${i}`, dtype: 'int64', dims: [1] },
          ],
          editSources: (ctx, s) => {
            ctx.output(`height_${i}`, ctx.height);
            ctx.output(`width_${i}`, ctx.width);
            return s;
          },
        };
      },
      required: picked,
    },
  });
  const session = await Session.create(modelToBytes(built.graph));
  const next = seededUniform(5);
  const outputs: Record<string, Tensor> = await session.run({ ...feeds, sample: float32([2, 4, 15, 23], randomFloats(next, 2 * 4 * 15 * 23)) });
  await session.dispose();
  const sizes = picked.map((_, i) => ({ height: Number(outputs[`height_${i}`]!.data[0]), width: Number(outputs[`width_${i}`]!.data[0]) }));
  const expected = picked.map((p) =>
    tokenMapSize(
      built.sites.find((s) => s.modulePath === p)!,
      { height: 15, width: 23 },
    ),
  );
  assert.deepEqual(sizes, expected);
  assert.deepEqual(expected, [
    { height: 15, width: 23 },
    { height: 2, width: 3 },
    { height: 8, width: 12 },
  ]);
});

test('processor mistakes are build errors that name the site', () => {
  const build = (processor: AttentionProcessor, required?: string[]) => () =>
    buildUNet(sd1TinyUNetWeights(), config, {
      freeu: null,
      processors: {
        choose: (site) => (site.modulePath === 'up_blocks.1.attentions.0.transformer_blocks.0.attn1' ? processor : undefined),
        ...(required ? { required } : {}),
      },
    });
  assert.throws(
    build({ outputs: [{ name: 'x', dtype: 'float32', dims: [1] }] }),
    /up_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn1: the processor declared graph output\(s\) x but never wrote them/,
  );
  assert.throws(
    build({
      editSources: (ctx, s) => {
        ctx.input('nope');
        return s;
      },
    }),
    /reads graph input 'nope' it did not declare/,
  );
  assert.throws(
    build({}, ['up_blocks.9.attentions.0.transformer_blocks.0.attn1']),
    /no attention module at up_blocks\.9\.attentions\.0\.transformer_blocks\.0\.attn1 \(attn1 modules of this UNet: down_blocks\.0\.attentions\.0\.transformer_blocks\.0\.attn1, down_blocks\.0\.attentions\.1/,
  );
  assert.throws(build({}, ['up_blocks.2.attentions.0.transformer_blocks.0.attn1']), /gave no processor to required site\(s\) up_blocks\.2\.attentions\.0/);
  const clash = {
    inputs: [{ name: 'shared', dtype: 'int64' as const, dims: [1], neutral: { dtype: 'int64' as const, dims: [1], data: BigInt64Array.of(0n) } }],
  };
  assert.throws(
    () =>
      buildUNet(sd1TinyUNetWeights(), config, {
        freeu: null,
        processors: {
          choose: (site) =>
            site.block !== 'up'
              ? undefined
              : site.blockIndex === 1
                ? clash
                : { inputs: [{ ...clash.inputs[0]!, dims: [2], neutral: { dtype: 'int64', dims: [2], data: new BigInt64Array(2) } }] },
        },
      }),
    /graph input 'shared' declared as int64\[2\], but another processor declared it as int64\[1\]/,
  );
});
