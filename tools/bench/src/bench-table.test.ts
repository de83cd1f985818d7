import { describe, expect, it } from 'vitest';
import { benchTable, gemmTable, genTable, parseBenchLog } from './bench-table.js';

describe('bench table', () => {
  it('pairs ours with PyTorch, attaches each command peak and computes the ratio', () => {
    const log = [
      'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":12000,"tflops":90}',
      'PEAK 60000 MiB rc=0 :: node a',
      'BENCH {"bench":"meta","torch":"2.11"}',
      'BENCH {"bench":"train","impl":"pytorch","tokens_per_s":40000,"tflops":300}',
      'BENCH {"bench":"gen","impl":"pytorch-hf-generate","new_tokens_per_s":3000}',
      'PEAK 24000 MiB rc=0 :: python b',
      'BENCH {"bench":"gen","impl":"latent-sft-ort","new_tokens_per_s":1500}',
    ].join('\n');
    const rows = parseBenchLog(log);
    expect(rows.map((r) => [r.bench, r.impl, r['peak_gpu_mib']])).toEqual([
      ['train', 'latent-sft-ort', 60000],
      ['train', 'pytorch', 24000],
      ['gen', 'pytorch-hf-generate', 24000],
      ['gen', 'latent-sft-ort', undefined],
    ]);
    const table = benchTable(rows).split('\n');
    expect(table[2]).toBe('| train | 12000 | pytorch | 40000 | 0.30× | 90.0 | 300.0 | 60000 | 24000 | – |');
    expect(table[3]).toBe('| gen | 1500 | pytorch-hf-generate | 3000 | 0.50× | – | – | – | 24000 | – |');
  });

  it('names the fused kernels of an ablation run (some off), not of a run with all on', () => {
    const rows = parseBenchLog(
      [
        'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":30000,"fused":{"optimizer":true,"softmax":true,"rmsnorm":true}}',
        'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":25000,"fused":{"optimizer":true,"softmax":true,"rmsnorm":false}}',
        'BENCH {"bench":"train","impl":"pytorch","tokens_per_s":37500}',
      ].join('\n'),
    );
    const table = benchTable(rows).split('\n');
    expect(table[2]).toBe('| train | 30000 | pytorch | 37500 | 0.80× | – | – | – | – | – |');
    expect(table[3]).toBe('| train (fused: optimizer, softmax) | 25000 | pytorch | 37500 | 0.67× | – | – | – | – | – |');
  });

  it('names a run with an opt-in fused kernel on (attention, weightCopies), not a default run with them off', () => {
    const rows = parseBenchLog(
      [
        'BENCH {"bench":"lora","impl":"latent-sft-ort","tokens_per_s":30000,"fused":{"optimizer":true,"softmax":true,"weightCopies":false,"attention":false}}',
        'BENCH {"bench":"lora","impl":"latent-sft-ort","tokens_per_s":33000,"fused":{"optimizer":true,"softmax":true,"weightCopies":false,"attention":true}}',
        'BENCH {"bench":"lora","impl":"pytorch","tokens_per_s":30000}',
      ].join('\n'),
    );
    const table = benchTable(rows).split('\n');
    expect(table[2]).toBe('| lora | 30000 | pytorch | 30000 | 1.00× | – | – | – | – | – |');
    expect(table[3]).toBe('| lora (fused: optimizer, softmax, attention) | 33000 | pytorch | 30000 | 1.10× | – | – | – | – | – |');
  });

  it('names a run with double-buffered Trainer state (train-bench --in-place false), not one in place', () => {
    const rows = parseBenchLog(
      [
        'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":30000,"state":"in-place"}',
        'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":29000,"state":"double-buffered"}',
        'BENCH {"bench":"train","impl":"pytorch","tokens_per_s":37500}',
      ].join('\n'),
    );
    const table = benchTable(rows).split('\n');
    expect(table[2]).toBe('| train | 30000 | pytorch | 37500 | 0.80× | – | – | – | – | – |');
    expect(table[3]).toBe('| train (double-buffered state) | 29000 | pytorch | 37500 | 0.77× | – | – | – | – | – |');
  });

  it('names a run with 16-bit parameters (train-bench --params bfloat16), not one with float32 masters', () => {
    const rows = parseBenchLog(
      [
        'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":30000,"params":"float32"}',
        'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":33000,"params":"bfloat16"}',
        'BENCH {"bench":"train","impl":"pytorch","tokens_per_s":37500}',
      ].join('\n'),
    );
    const table = benchTable(rows).split('\n');
    expect(table[2]).toBe('| train | 30000 | pytorch | 37500 | 0.80× | – | – | – | – | – |');
    expect(table[3]).toBe('| train (bfloat16 params) | 33000 | pytorch | 37500 | 0.88× | – | – | – | – | – |');
  });

  it("names a CUDA-graph run and says whether its losses are the launched run's bit for bit", () => {
    const run = (graph: boolean, losses: number[], batch = 8) =>
      `BENCH {"bench":"phase2","impl":"latent-sft-ort","tokens_per_s":${graph ? 5000 : 3000},"batch":${batch},"recompute":"none","cuda_graph":${graph},"losses":${JSON.stringify(losses)}}`;
    const rows = parseBenchLog(
      [
        run(false, [2.5, 2.25]),
        run(true, [2.5, 2.25]),
        run(true, [2.5, 2.2500001]),
        run(true, [2.5, 2.25], 16),
        'BENCH {"bench":"phase2","impl":"pytorch","tokens_per_s":5000}',
      ].join('\n'),
    );
    expect(benchTable(rows).split('\n').slice(2)).toEqual([
      '| phase2 | 3000 | pytorch | 5000 | 0.60× | – | – | – | – | – |',
      "| phase2 (CUDA graph; losses bit for bit the launched run's) | 5000 | pytorch | 5000 | 1.00× | – | – | – | – | – |",
      "| phase2 (CUDA graph; losses DIFFER from the launched run's) | 5000 | pytorch | 5000 | 1.00× | – | – | – | – | – |",
      '| phase2 (CUDA graph; no launched run to compare losses) | 5000 | pytorch | 5000 | 1.00× | – | – | – | – | – |',
    ]);
  });

  it('prints one ratio per PyTorch recipe, the error of a failed recipe, and PyTorch-only benchmarks', () => {
    const rows = parseBenchLog(
      [
        'BENCH {"bench":"train","impl":"latent-sft-ort","tokens_per_s":30000,"tflops":230}',
        'PEAK 50000 MiB rc=0 :: node a',
        'BENCH {"bench":"train","impl":"pytorch","recipe":"bf16-fused","tokens_per_s":40000,"peak_gib_torch":19.5}',
        'PEAK 22000 MiB rc=0 :: python b',
        'BENCH {"bench":"train","impl":"pytorch","recipe":"bf16-fused-compile","tokens_per_s":60000,"peak_gib_torch":15.1}',
        'PEAK 17000 MiB rc=0 :: python c',
        'BENCH {"bench":"train","impl":"pytorch","recipe":"fp32master-fused-compile","error":"RuntimeError: boom\\nmore"}',
        'PEAK 1000 MiB rc=0 :: python d',
        'BENCH {"bench":"lora7b","impl":"pytorch","recipe":"peft-fused","tokens_per_s":8374,"peak_gib_torch":61.8}',
        'PEAK 65000 MiB rc=0 :: python e',
      ].join('\n'),
    );
    expect(benchTable(rows).split('\n').slice(2)).toEqual([
      '| train | 30000 | bf16-fused | 40000 | 0.75× | 230.0 | – | 50000 | 22000 | 19.5 |',
      '| train | 30000 | bf16-fused-compile | 60000 | 0.50× | 230.0 | – | 50000 | 17000 | 15.1 |',
      '| train | 30000 | fp32master-fused-compile | error: RuntimeError: boom | – | 230.0 | – | 50000 | 1000 | – |',
      '| lora7b | – | peft-fused | 8374 | – | – | – | – | 65000 | 61.8 |',
    ]);
  });

  it('generation: ms per decode step, decode tokens/s and the fraction of the bandwidth limit ours records', () => {
    const rows = parseBenchLog(
      [
        'BENCH {"bench":"gen","impl":"latent-sft-ort","mode":"explicit","engine":"cuda-graph","batch":64,"new_tokens_per_s":20000,"decode_ms_per_step":3.2,"bandwidth_limit_tokens_per_s":80000}',
        'PEAK 9000 MiB rc=0 :: node g',
        'BENCH {"bench":"gen","impl":"pytorch","recipe":"hf-generate","batch":64,"new_tokens_per_s":5000,"ms_per_step":12.8}',
        'PEAK 8000 MiB rc=0 :: python g',
        // Ablations are named: DecodeAttention by the record, ONNX TopK by the record or (older records) the command.
        'BENCH {"bench":"gen","impl":"latent-sft-ort","mode":"explicit","engine":"cuda-graph","attention":"fused","topk":"ops","batch":64,"new_tokens_per_s":16000,"decode_ms_per_step":4}',
        'PEAK 9000 MiB rc=0 :: node g',
        'BENCH {"bench":"gen","impl":"latent-sft-ort","mode":"explicit","engine":"fixed","batch":64,"new_tokens_per_s":16000,"decode_ms_per_step":4}',
        'PEAK 9000 MiB rc=0 :: node g --engine fixed --topk ops',
        'BENCH {"bench":"gen-latent","impl":"latent-sft-ort","mode":"latent","engine":"cuda-graph","feed":"hidden","batch":64,"new_tokens_per_s":19000,"decode_ms_per_step":3.2}',
        'PEAK 9000 MiB rc=0 :: node g --mode latent --feed hidden',
      ].join('\n'),
    );
    expect(genTable(rows).split('\n')).toEqual([
      '| generation run | new tokens/s | ms / decode step | decode tokens/s | of the bandwidth limit (80000 tokens/s) | peak GPU MiB |',
      '|---|---:|---:|---:|---:|---:|',
      '| ours, explicit (cuda-graph) | 20000 | 3.20 | 20000 | 25.0 % | 9000 |',
      '| hf-generate | 5000 | 12.80 | 5000 | 6.3 % | 8000 |',
      '| ours, explicit (cuda-graph) (DecodeAttention, ONNX TopK) | 16000 | 4.00 | 16000 | 20.0 % | 9000 |',
      '| ours, explicit (fixed) (ONNX TopK) | 16000 | 4.00 | 16000 | 20.0 % | 9000 |',
      '| ours, latent (cuda-graph) (hidden-state feed) | 19000 | 3.20 | 20000 | 25.0 % | 9000 |',
    ]);
  });

  it('matrix products: ORT and PyTorch per shape, with the time ratio', () => {
    const rows = parseBenchLog(
      [
        'BENCH {"bench":"gemm","impl":"latent-sft-ort","shape":"1b.q_proj.fwd","m":4096,"n":2048,"k":2048,"trans_a":0,"trans_b":1,"us":100,"tflops":171.8}',
        'BENCH {"bench":"gemm","impl":"pytorch","recipe":"torch.matmul","shape":"1b.q_proj.fwd","m":4096,"n":2048,"k":2048,"trans_a":0,"trans_b":1,"us":80,"tflops":214.7}',
        'BENCH {"bench":"gemm","impl":"latent-sft-ort","shape":"1b.up_proj.dw","m":8192,"n":2048,"k":4096,"trans_a":1,"trans_b":0,"us":300,"tflops":458}',
      ].join('\n'),
    );
    expect(gemmTable(rows).split('\n').slice(2)).toEqual([
      '| 1b.q_proj.fwd (4096 × 2048 × 2048, NT) | run / 16 (fixed cost in) | 100.0 | 172 | – | 80.0 | 215 | 1.25× |',
      '| 1b.up_proj.dw (8192 × 2048 × 4096, TN) | run / 16 (fixed cost in) | 300.0 | 458 | – | – | – | – |',
    ]);
    expect(benchTable(rows).split('\n').length).toBe(2); // not steps
  });

  it('matrix products: a slope record (per-node time and per-run fixed cost) beside an old per-run record, each marked', () => {
    const log = [
      // session 10's probe: no method, us = one graph's run time / 16
      'BENCH {"bench":"gemm","impl":"latent-sft-ort","op":"gemm","dtype":"bfloat16","shape":"1b.lora_a.fwd","m":4096,"n":64,"k":2048,"trans_a":0,"trans_b":1,"us":25.4,"tflops":42.3}',
      // gemm-probe now: us = (t_r2 - t_r1) / (r2 - r1), run_overhead_us = t_r1 - r1 * us
      'BENCH {"bench":"gemm","impl":"latent-sft-ort","op":"gemm","dtype":"bfloat16","shape":"1b.lora_a.fwd","m":4096,"n":64,"k":2048,"trans_a":0,"trans_b":1,"method":"slope","us":16.5,"tflops":65.1,"run_overhead_us":150,"r1":8,"r2":40,"t_r1_us":282,"t_r2_us":810,"runs":20}',
      'BENCH {"bench":"gemm","impl":"pytorch","recipe":"torch.matmul","dtype":"bfloat16","shape":"1b.lora_a.fwd","m":4096,"n":64,"k":2048,"trans_a":0,"trans_b":1,"us":16.5,"tflops":65.1}',
      'PEAK 4000 MiB rc=0 :: node gemm-probe.mjs --device cuda',
    ].join('\n');
    const rows = parseBenchLog(log);
    expect(rows[1]).toMatchObject({ method: 'slope', run_overhead_us: 150, t_r1_us: 282, t_r2_us: 810, peak_gpu_mib: 4000 });
    const table = gemmTable(rows).split('\n');
    expect(table[0]).toBe(
      '| product (M × N × K, trans) | ORT method | ORT us | ORT TFLOP/s | ORT per-run fixed cost us | PyTorch us | PyTorch TFLOP/s | ORT / PyTorch time |',
    );
    expect(table.slice(2)).toEqual([
      '| 1b.lora_a.fwd (4096 × 64 × 2048, NT) | run / 16 (fixed cost in) | 25.4 | 42 | – | 16.5 | 65 | 1.54× |',
      '| 1b.lora_a.fwd (4096 × 64 × 2048, NT) | slope 8→40 | 16.5 | 65 | 150.0 | 16.5 | 65 | 1.00× |',
    ]);
  });
});
